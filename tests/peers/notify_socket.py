#!/usr/bin/python3
"""notify_socket.py PATH OUT - a stand-in for systemd's NOTIFY_SOCKET: binds a datagram
socket at PATH, prints "READY 0" once bound, and appends every message it receives to OUT,
one per line (newlines inside a message become " | "), until SIGTERM."""
import os
import signal
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("READY 0", flush=True)
with open(out, "a", encoding="utf-8") as f:
    while True:
        data = sock.recv(4096)
        f.write(data.decode("utf-8", "replace").strip().replace("\n", " | ") + "\n")
        f.flush()
