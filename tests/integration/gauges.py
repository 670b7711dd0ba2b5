#!/usr/bin/env python3
"""gauges.py METRICS STATUS - does /metrics' crier_campaign_notices (METRICS: the scraped
text) say what `crier status --json` (STATUS: every campaign, an array) says of the running
campaigns: a sample for each campaign, channel and state of by_channel with the same value,
none for a campaign that is not running, and no other? Exit 0 if so; else print what
differs and exit 1. Label values are read as the text format writes them (\\\\, \\", \\n)."""
import json
import re
import sys

SAMPLE = re.compile(r'^crier_campaign_notices\{campaign="((?:[^"\\]|\\.)*)",'
                    r'channel="((?:[^"\\]|\\.)*)",state="((?:[^"\\]|\\.)*)"\} (-?[0-9]+)$')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def main(metrics_path, status_path):
    scraped = {}
    for line in open(metrics_path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.startswith("crier_campaign_notices"):
            continue
        m = SAMPLE.match(line)
        if not m:
            print(f"not a sample of the text format: {line}")
            return 1
        key = tuple(unescape(g) for g in m.groups()[:3])
        scraped[key] = int(m.group(4))
    expected = {}
    for campaign in json.load(open(status_path, encoding="utf-8")):
        if campaign["state"] != "running":
            continue
        for channel, states in campaign["by_channel"].items():
            for state, count in states.items():
                expected[(campaign["campaign"], channel, state)] = count
    if scraped == expected and expected:
        return 0
    for key in sorted(set(scraped) | set(expected)):
        if scraped.get(key) != expected.get(key):
            print(f"{key}: /metrics {scraped.get(key)}, status {expected.get(key)}")
    if not expected:
        print("no running campaign in status: nothing was compared")
    return 1


sys.exit(main(*sys.argv[1:3]))
