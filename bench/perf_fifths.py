#!/usr/bin/env python3
"""perf_fifths.py DATA FIRST LAST - where the machine's time went in two windows of a run.

Reads `perf script` of a whole-machine profile (bench/scale.sh with PERF=DIR) for two
`--time` ranges, FIRST and LAST (as scale.sh prints them), and counts the samples of each
thread in each. Each fifth has the same number of notices, so a thread's samples in the
two windows compare its CPU per notice. The last column is a hint, not a profile: for a
crier thread, the crier function in most of its samples' stacks (stacks unwound by frame
pointer stop at libraries built without them, libpq's among them); for a PostgreSQL
backend, whether it answered a FETCH (the seal's cursor; the lanes' statements are not
FETCHes). `perf report --tid` on the same ranges gives a thread's functions."""
import subprocess
import sys
from collections import Counter, defaultdict


def threads(data, window):
    out = subprocess.run(["perf", "script", "-i", data, "--time", window, "-F", "comm,tid,ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    count = Counter()
    roots = defaultdict(Counter)
    key, frames = None, []

    def flush():
        if key is None:
            return
        count[key] += 1
        if key[0] == "postgres" and any(f == "PortalRunFetch" for f, _ in frames):
            roots[key]["a FETCH (the seal)"] += 1
        elif key[0] == "crier":
            # crier's own functions in this sample's stack, each counted once: the one in
            # most of a thread's samples names it (stacks unwound by frame pointer can
            # stop short of the thread's start, so the root-most would mislead)
            for f in {f for f, dso in frames if dso.endswith("/crier)") and f != "main"}:
                roots[key][f] += 1

    for line in out.splitlines():
        if not line.strip():
            continue
        if line[0] != "\t":  # a sample's line; its stack's lines begin with a tab
            flush()
            comm, tid = line.split()[:2]
            key, frames = (comm, tid), []
        else:
            parts = line.split()
            frames.append((parts[1] if len(parts) > 2 else "?", parts[-1]))
    flush()
    return count, roots


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    data, first, last = sys.argv[1:]
    (a, ra), (b, rb) = threads(data, first), threads(data, last)
    ta, tb = sum(a.values()), sum(b.values())
    print(f"{'thread':18} {'first fifth':>13} {'last fifth':>13} {'last/first':>10}  hint")
    for k in sorted(set(a) | set(b), key=lambda k: -(a[k] + b[k])):
        if a[k] + b[k] < 0.005 * (ta + tb):
            continue
        r = f"{b[k] / a[k]:.2f}" if a[k] else "-"
        what = (ra[k] + rb[k]).most_common(1)
        print(f"{k[0] + ' ' + k[1]:18} {a[k]:7d} {100 * a[k] / ta:3.0f} % {b[k]:7d} {100 * b[k] / tb:3.0f} %"
              f" {r:>10}  {what[0][0] if what else ''}")
    print(f"{'all':18} {ta:7d}       {tb:7d}       {tb / ta:10.2f}")


main()
