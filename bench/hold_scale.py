#!/usr/bin/env python3
"""hold_scale.py PHASES PGLOG [OUT] - the claims of bench/hold_scale.sh, phase by phase.

PHASES has a line "NAME EPOCH" per phase start (the server's clock). PGLOG is the
server's log with an auto_explain entry (ANALYZE, BUFFERS) for every statement. A claim is
an entry whose query text begins as the claim's does (its gate, then "running"); it
belongs to the phase in which it ended. Prints per phase: claims, empty claims, the median and 90th percentile
duration of the claims that took rows and of the empty ones, and the shared buffers the
median claim touched. With OUT, writes OUT/claim-PHASE.plan: the median claim's plan.
"""
import datetime
import re
import statistics
import sys

ENTRY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] .*?LOG:  duration: "
                   r"([0-9.]+) ms  plan:")
ROWS = re.compile(r"actual (?:time=[0-9.]+\.\.[0-9.]+ )?rows=(\d+)")
# the claim's text (queue.c); a record begins with the same gate, then "o AS"
CLAIM = re.compile(r"Query Text: WITH (RECURSIVE )?gate AS \(.*?\)\), running AS")
BUFFERS = re.compile(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?")


def epoch(stamp):
    d = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def entries(path):
    """(end epoch, ms, plan lines) of each auto_explain entry."""
    current = None
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            m = ENTRY.match(line)
            if m:
                if current:
                    yield current
                current = (epoch(m[1]), float(m[2]), [])
            elif current and (line.startswith("\t") or line.startswith(" ")):
                current[2].append(line.rstrip("\n"))
            elif current:
                yield current
                current = None
    if current:
        yield current


def claim(plan):
    """(rows returned, shared buffers of the top node) of a claim's plan, or None."""
    if not plan or not CLAIM.search(plan[0]):
        return None
    rows = buffers = None
    for line in plan[1:]:
        if rows is None:
            m = ROWS.search(line)
            if m:
                rows = int(m[1])
        if buffers is None:
            b = BUFFERS.search(line)
            if b:
                buffers = int(b[1] or 0) + int(b[2] or 0)
        if rows is not None and buffers is not None:
            break
    return rows or 0, buffers or 0


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def main():
    phases = [(name, float(t)) for name, t in (l.split() for l in open(sys.argv[1]))]
    out = sys.argv[3] if len(sys.argv) > 3 else ""
    found = {name: [] for name, _ in phases}
    for end, ms, plan in entries(sys.argv[2]):
        c = claim(plan)
        if c is None:
            continue
        name = None
        for phase, start in phases:
            if end >= start:
                name = phase
        if name and name != "end":
            found[name].append((ms, c[0], c[1], plan))
    for name, _ in phases:
        if name == "end":
            continue
        claims = found[name]
        full = [c for c in claims if c[1] > 0]
        empty = [c for c in claims if c[1] == 0]
        line = "%-8s %5d claims, %5d empty;" % (name, len(claims), len(empty))
        for label, group in (("taking rows", full), ("empty", empty)):
            if group:
                ms = [c[0] for c in group]
                mid = sorted(group, key=lambda c: c[0])[len(group) // 2]
                line += " %s: median %.1f ms, p90 %.1f ms, %d buffers;" % (
                    label, statistics.median(ms), pct(ms, 0.9), mid[2])
        print(line)
        if out and claims:
            group = full if full and name != "empty" else claims
            mid = sorted(group, key=lambda c: c[0])[len(group) // 2]
            with open("%s/claim-%s.plan" % (out, name), "w", encoding="utf-8") as f:
                f.write("-- %.3f ms, %d rows\n" % (mid[0], mid[1]))
                f.write("\n".join(mid[3]) + "\n")


if __name__ == "__main__":
    main()
