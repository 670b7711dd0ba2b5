#!/usr/bin/env python3
"""console_clients.py BASE USER CLIENTS STOPFILE CAMPAIGN INTERVAL - CLIENTS threads, each logged in
to crier serve as USER (password 'pw') with its own session, polling the campaign page and
the API (alternately /campaign?name=CAMPAIGN and /api/v1/campaigns), each INTERVAL seconds
after its last answer (0: as fast as they can), until STOPFILE exists. Prints
the number of requests, errors, and p50/p99 latency in milliseconds."""
import http.cookiejar
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request

base, user, stopfile, campaign = sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5]
clients, interval = int(sys.argv[3]), float(sys.argv[6])
latencies, errors = [], []
lock = threading.Lock()


def client():
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = urllib.parse.urlencode({"user": user, "password": "pw"}).encode()
    token = json.loads(opener.open(base + "/api/v1/login", body).read())["csrf"]
    paths = ["/campaign?name=" + urllib.parse.quote(campaign), "/api/v1/campaigns"]
    i = 0
    while not os.path.exists(stopfile):
        t0 = time.monotonic()
        try:
            opener.open(base + paths[i % 2]).read()
            with lock:
                latencies.append(time.monotonic() - t0)
        except Exception as e:  # counted, the run goes on
            with lock:
                errors.append(repr(e))
        i += 1
        time.sleep(interval)
    # each session is a PostgreSQL connection: give it back
    logout = urllib.request.Request(base + "/api/v1/logout", b"", {"X-CSRF-Token": token})
    opener.open(logout).read()


threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
latencies.sort()
if not latencies:
    print("requests 0 errors", len(errors))
    sys.exit(1)
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
print(f"requests {len(latencies)} errors {len(errors)} p50_ms {p(0.5):.1f} p99_ms {p(0.99):.1f}")
