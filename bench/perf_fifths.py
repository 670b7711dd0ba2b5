#!/usr/bin/env python3
"""perf_fifths.py DATA FIRST LAST - where the machine's time went in two windows of a run.

Reads `perf script` of a whole-machine profile (bench/scale.sh with PERF=DIR) for two
`--time` ranges, FIRST and LAST (as scale.sh prints them), and counts the samples of each
thread in each. A thread of crier is named by the crier function nearest the root of its
stacks that is not main() (the lane's, the seal's, ...); a PostgreSQL backend that answered a FETCH (the
seal's cursor) is marked so. Each fifth has the same number of notices, so a thread's
samples in the two windows compare its CPU per notice."""
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
            # the root-most of crier's own functions under the thread's start
            own = [f for f, dso in frames if dso.endswith("/crier)") and f not in ("main", "start_thread")]
            if own:
                roots[key][own[-1]] += 1

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
    print(f"{'thread':18} {'first fifth':>13} {'last fifth':>13} {'last/first':>10}  what it ran")
    for k in sorted(set(a) | set(b), key=lambda k: -(a[k] + b[k])):
        if a[k] + b[k] < 0.005 * (ta + tb):
            continue
        r = f"{b[k] / a[k]:.2f}" if a[k] else "-"
        what = (ra[k] + rb[k]).most_common(1)
        print(f"{k[0] + ' ' + k[1]:18} {a[k]:7d} {100 * a[k] / ta:3.0f} % {b[k]:7d} {100 * b[k] / tb:3.0f} %"
              f" {r:>10}  {what[0][0] if what else ''}")
    print(f"{'all':18} {ta:7d}       {tb:7d}       {tb / ta:10.2f}")


main()
