#!/usr/bin/env python3
"""plans.py FILE... - the lines that matter of bench/scale.sh's PLANS logs (auto_explain).

For each hot statement (claim, record, lease extension, reaper, completion check,
work_left, tally fold, status, fax poll, seal), the number of plans, the median and
largest duration, and every scan node with the largest number of rows it returned in
any of them: what shows whether a statement reads in proportion to its batch or to the
campaign. "N generic": plans that kept the channel a parameter (a prepared statement's
generic plan; a custom plan shows the value). Usage: bench/plans.py /tmp/plans/plans-1000000-4-null-1.log
"""
import re
import statistics
import sys

KINDS = [  # (name, pattern in the query text), first match wins
    ("claim", r"running AS \( SELECT c\.id"),
    ("record", r"campaign AS \( SELECT c\.state"),
    ("lease extension", r"UPDATE crier\.notice SET lease_expires_at"),
    ("reaper", r"WITH expired AS"),
    ("completion check", r"WITH done AS \(UPDATE crier\.campaign"),
    ("work_left", r"SELECT \(EXISTS \(SELECT 1 FROM crier\.notice"),
    ("tally fold", r"notice_tally_fold\(campaign_id\)"),
    ("status", r"FROM crier\.campaign c LEFT JOIN LATERAL \(SELECT channel, state, sum\(n\)"),
    ("fax poll", r"WHERE n\.state = 'submitted' AND n\.channel"),
    ("seal: rows", r"DECLARE seal_rows"),
    ("seal: block", r"INSERT INTO crier\.audit_block"),
    ("tally trigger", r"INSERT INTO crier\.notice_tally"),
]


def plans(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    for chunk in re.split(r"\n(?=\S.*LOG:  duration: )", text):
        m = re.search(r"duration: ([0-9.]+) ms  plan:\n\s*Query Text: (.*)", chunk)
        if m:
            yield float(m.group(1)), m.group(2), chunk


def main(paths):
    for path in paths:
        found = {}
        for ms, query, chunk in plans(path):
            kind = next((k for k, p in KINDS if re.search(p, query)), None)
            if kind is None:
                continue
            entry = found.setdefault(kind, {"ms": [], "scans": {}, "generic": 0})
            entry["ms"].append(ms)
            # a generic plan keeps the channel a parameter; a custom one shows its value
            entry["generic"] += bool(re.search(r"\bchannel = \$\d+\b", chunk.split("\n", 2)[-1]))
            for line in chunk.splitlines():
                s = re.search(r"(?:->\s+)?((?:Parallel )?(?:Seq|Index|Index Only|Bitmap Heap|Bitmap Index|CTE|Tid|Function) Scan.*?) +\(cost.*actual time=\S+ rows=(\d+) loops=(\d+)", line)
                if s:
                    name = re.sub(r"\s+", " ", s.group(1))
                    rows = int(s.group(2)) * int(s.group(3))
                    entry["scans"][name] = max(entry["scans"].get(name, 0), rows)
        print(f"== {path}")
        for kind, _ in KINDS:
            if kind not in found:
                continue
            e = found[kind]
            print(f"{kind}: {len(e['ms'])} plans, median {statistics.median(e['ms']):.2f} ms,"
                  f" max {max(e['ms']):.2f} ms"
                  + (f", {e['generic']} generic" if e["generic"] else ""))
            for name, rows in sorted(e["scans"].items(), key=lambda x: -x[1]):
                print(f"    {rows:>9} rows  {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
