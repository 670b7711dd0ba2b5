#!/usr/bin/python3
"""fax_gateway.py [options] - an HTTP fax gateway speaking the Sinch Fax API v3 shape.

A test peer for crier's fax channel (tests/integration/fax.sh, bench/fax.sh); standard
library only (run it with Debian's /usr/bin/python3). It listens on 127.0.0.1:PORT (a free
port when 0), prints "READY <port>" on stdout once it accepts connections, and runs until
SIGTERM or SIGINT. HTTP/1.1 with keep-alive; HTTPS with --tls-cert/--tls-key.

  POST /v3/projects/{project}/faxes      multipart/form-data: file (a PDF), to, from,
                                         headerText, callbackUrl, and labels either as one
                                         JSON field "labels" or as labels[key] fields
  GET  /v3/projects/{project}/faxes/{id} the Fax object
  GET  /v3/projects/{project}/faxes?to=PREFIX&pageSize=N&pageToken=T
                                         {"faxes": [Fax...], "totalSize", "pageSize",
                                         "nextPageToken"}, newest first; `to` matches by prefix

Every request must authenticate: HTTP Basic with --key-id/--secret, or Bearer --token.
The upload is checked: multipart parsed, `to` in E.164, the file part starts with %PDF-.
A Fax is QUEUED for --queued-s, IN_PROGRESS for --progress-s, then COMPLETED, or FAILURE
(errorType CALL_ERROR) when `to` ends in 0000.

Scripted by the number `to` (its last four digits), the first time that number is seen:
  0400  400 INVALID_ARGUMENT (always: a number the gateway refuses)
  0429  429 with Retry-After: --retry-after
  0500  500;  0503  503
  0999  the fax is accepted and recorded, then the connection is closed with no reply
  0997  the request is read, nothing is recorded, the connection is closed with no reply
  0998  the request is read, nothing is recorded, and no reply comes for --stall-s (a
        gateway that times out before taking the fax); then the connection is closed
  0996  the fax is accepted and recorded, and the reply comes only after --stall-s (a
        client with a shorter timeout has given up by then)
  0504  the fax is accepted and recorded, then 504 (a proxy that gave up waiting for it)
--stall-connections N: the first N connections are accepted and never read or answered
for --stall-s, then closed. --stall-status N: the first N GETs of a fax's status wait
--stall-s before their reply. Each stall prints "STALLED connection" or "STALLED status
<id>" on stdout.
Random faults (seeded by --seed), checked in this order on each POST: --rate-429,
--rate-500, --rate-503 (nothing recorded), then --drop-rate (accepted, recorded, reply
dropped) up to --drop-max drops. --latency-ms delays every reply; --slow-rate of the
replies are delayed --slow-ms more.

--log FILE: one JSON line per accepted fax: {"id", "to", "from", "labels", "sha256",
"bytes", "pages", "header_text", "dropped", "time"}: tests count faxes per number with it.
--save-dir DIR keeps each accepted PDF as DIR/<id>.pdf.

Status callbacks: a fax submitted with a callbackUrl is posted to it once final (after
--callback-delay-s more), in the Sinch callback shape: {"event": "FAX_COMPLETED",
"eventTime", "fax": the Fax object, "file": the PDF in base64, "fileType": "PDF"} as
application/json, or as multipart/form-data (Sinch's default) with the fields event,
eventTime and fax (JSON text, part type application/json) and the PDF as the file part
"file"; the request's callbackUrlContentType, else --callback-format, chooses. A reply
other than 200 is retried --callback-retries times, --callback-retry-s apart.
--callback-log FILE: one JSON line per post: {"id", "status" (HTTP status, 0 when none),
"format", "attempt", "time"}. --callback-save-dir DIR keeps each body as DIR/<id>.body and
its Content-Type as DIR/<id>.type, so that a test can replay it. --callback-jitter-s S
adds a random 0..S seconds to each callback's delay (seeded). --status-log FILE: one JSON
line per status GET of a fax: {"id", "time"}.
"""
import argparse
import base64
import datetime
import email.parser
import email.policy
import hashlib
import json
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PATH_FAXES = re.compile(r"^/v3/projects/([^/]+)/faxes/?$")
PATH_FAX = re.compile(r"^/v3/projects/([^/]+)/faxes/([^/]+)$")
HEADER_PARSER = email.parser.BytesParser(policy=email.policy.HTTP)


class Gateway:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.faxes = {}      # id -> fax dict (internal fields start with "_")
        self.order = []      # ids, oldest first
        self.seen = set()    # numbers already scripted once
        self.sequence = 0
        self.drops = 0
        self.stalled_connections = 0
        self.stalled_status = 0
        self.random = random.Random(args.seed)
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.callback_log = open(args.callback_log, "a", buffering=1) if args.callback_log else None
        self.status_log = open(args.status_log, "a", buffering=1) if args.status_log else None
        self.basic = "Basic " + base64.b64encode(
            f"{args.key_id}:{args.secret}".encode()).decode()

    def authorised(self, header):
        if header is None:
            return False
        if header == self.basic:
            return True
        return bool(self.args.token) and header == "Bearer " + self.args.token

    def first_time(self, number):
        with self.lock:
            if number in self.seen:
                return False
            self.seen.add(number)
            return True

    def take(self, counter, limit):
        """True (and counted) while fewer than limit of this kind have stalled."""
        with self.lock:
            if getattr(self, counter) >= limit:
                return False
            setattr(self, counter, getattr(self, counter) + 1)
            return True

    def chance(self, rate):
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate

    def want_drop(self):
        if self.args.drop_rate <= 0:
            return False
        with self.lock:
            if self.args.drop_max >= 0 and self.drops >= self.args.drop_max:
                return False
            if self.random.random() < self.args.drop_rate:
                self.drops += 1
                return True
            return False

    def create(self, project, fields, labels, pdf, dropped):
        with self.lock:
            self.sequence += 1
            fax_id = "01FAX%010d%04d" % (self.sequence, self.random.randrange(10000))
            now = time.time()
            fax = {
                "id": fax_id, "direction": "OUTBOUND", "projectId": project,
                "from": fields.get("from", ""), "to": fields["to"],
                "headerText": fields.get("headerText", ""), "labels": labels,
                "numberOfPages": len(re.findall(rb"/Type\s*/Page[^s]", pdf)),
                "callbackUrl": fields.get("callbackUrl", ""), "retryCount": 0,
                "_created": now,
            }
            if fax["callbackUrl"]:
                fax["_pdf"] = pdf
                fax["_callback_format"] = fields.get("callbackUrlContentType",
                                                     self.args.callback_format)
            self.faxes[fax_id] = fax
            self.order.append(fax_id)
        if self.args.save_dir:
            with open(f"{self.args.save_dir}/{fax_id}.pdf", "wb") as f:
                f.write(pdf)
        if self.log:
            line = json.dumps({
                "id": fax_id, "to": fax["to"], "from": fax["from"], "labels": labels,
                "sha256": hashlib.sha256(pdf).hexdigest(), "bytes": len(pdf),
                "pages": fax["numberOfPages"], "header_text": fax["headerText"],
                "dropped": dropped, "time": now})
            with self.lock:
                self.log.write(line + "\n")
        if fax["callbackUrl"]:
            final_in = self.args.queued_s + self.args.progress_s + self.args.callback_delay_s
            with self.lock:
                final_in += self.random.uniform(0, self.args.callback_jitter_s)
            timer = threading.Timer(final_in, self.callback, (fax, 1))
            timer.daemon = True
            timer.start()
        return fax

    def callback_body(self, fax):
        """(content type, bytes) of the fax's final status in the Sinch callback shape."""
        view, pdf = self.view(fax), fax["_pdf"]
        event = {"event": "FAX_COMPLETED", "eventTime": iso(time.time())}
        if fax["_callback_format"] == "application/json":
            body = dict(event, fax=view, file=base64.b64encode(pdf).decode("ascii"),
                        fileType="PDF")
            return "application/json", json.dumps(body).encode("utf-8")
        boundary = "gw" + uuid.uuid4().hex
        parts = []
        for name, value, ctype in (("event", event["event"], "text/plain"),
                                   ("eventTime", event["eventTime"], "text/plain"),
                                   ("fax", json.dumps(view), "application/json")):
            parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                          f"Content-Type: {ctype}\r\n\r\n{value}\r\n").encode("utf-8"))
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                      f'filename="{fax["id"]}.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
                      ).encode("utf-8") + pdf + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode("utf-8"))
        return f"multipart/form-data; boundary={boundary}", b"".join(parts)

    def callback(self, fax, attempt):
        """POST the final status to the fax's callbackUrl; retried on anything but 200."""
        ctype, body = self.callback_body(fax)
        if self.args.callback_save_dir:
            with open(f"{self.args.callback_save_dir}/{fax['id']}.body", "wb") as f:
                f.write(body)
            with open(f"{self.args.callback_save_dir}/{fax['id']}.type", "w") as f:
                f.write(ctype)
        request = urllib.request.Request(fax["callbackUrl"], data=body, method="POST",
                                         headers={"Content-Type": ctype})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                status = reply.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        if self.callback_log:
            line = json.dumps({"id": fax["id"], "status": status, "attempt": attempt,
                               "format": fax["_callback_format"], "time": time.time()})
            with self.lock:
                self.callback_log.write(line + "\n")
        if status != 200 and attempt <= self.args.callback_retries:
            timer = threading.Timer(self.args.callback_retry_s, self.callback, (fax, attempt + 1))
            timer.daemon = True
            timer.start()

    def view(self, fax):
        """The Fax object as the API shows it now: the status advances with time."""
        elapsed = time.time() - fax["_created"]
        out = {k: v for k, v in fax.items() if not k.startswith("_")}
        out["createTime"] = iso(fax["_created"])
        queued, progress = self.args.queued_s, self.args.progress_s
        if elapsed < queued:
            out["status"] = "QUEUED"
        elif elapsed < queued + progress:
            out["status"] = "IN_PROGRESS"
        elif fax["to"].endswith("0000"):
            out["status"] = "FAILURE"
            out["errorType"] = "CALL_ERROR"
            out["errorMessage"] = "busy or no answer after 3 tries"
            out["retryCount"] = 3
            out["completedTime"] = iso(fax["_created"] + queued + progress)
        else:
            out["status"] = "COMPLETED"
            out["completedTime"] = iso(fax["_created"] + queued + progress)
        return out


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def parse_multipart(content_type, body):
    """(fields, files) of a multipart/form-data body; files: name -> (type, bytes)."""
    header = HEADER_PARSER.parsebytes(b"Content-Type: " + content_type.encode("latin-1")
                                      + b"\r\n\r\n")
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise ValueError("not multipart/form-data")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body not terminated")
    fields, files = {}, {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ValueError("malformed part")
        head, sep, content = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        part = HEADER_PARSER.parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("part without a name")
        if part.get_param("filename", header="content-disposition") is not None:
            files[name] = (part.get_content_type(), content)
        else:
            fields[name] = content.decode("utf-8")
    return fields, files


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fax-gateway/1"

    def log_message(self, fmt, *args):  # quiet: tests read --log, not stderr
        pass

    def handle(self):
        args = self.gateway.args
        if self.gateway.take("stalled_connections", args.stall_connections):
            print("STALLED connection", flush=True)
            time.sleep(args.stall_s)  # accepted by the kernel, never read, never answered
            self.close_connection = True
            return
        super().handle()

    def hang_up(self):
        """Close the connection without a reply."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @property
    def gateway(self):
        return self.server.gateway

    def reply(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.delay()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, status, message, headers=None):
        self.reply(code, {"code": code, "status": status, "message": message}, headers)

    def delay(self):
        args = self.gateway.args
        seconds = args.latency_ms / 1000.0
        if self.gateway.chance(args.slow_rate):
            seconds += args.slow_ms / 1000.0
        if seconds > 0:
            time.sleep(seconds)

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        return self.rfile.read(int(length))

    def check_auth(self):
        if self.gateway.authorised(self.headers.get("Authorization")):
            return True
        self.error(401, "UNAUTHENTICATED", "missing or wrong credentials",
                   {"WWW-Authenticate": 'Basic realm="fax"'})
        return False

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        match = PATH_FAXES.match(url.path)
        body = self.read_body()
        if body is None:
            return self.error(411, "INVALID_ARGUMENT", "Content-Length required")
        if not match:
            return self.error(404, "NOT_FOUND", "no such resource")
        if not self.check_auth():
            return
        project = match.group(1)
        if project != self.gateway.args.project:
            return self.error(404, "NOT_FOUND", "no such project")
        if self.headers.get("Expect"):
            return self.error(417, "INVALID_ARGUMENT", "Expect is not supported")
        try:
            fields, files = parse_multipart(self.headers.get("Content-Type", ""), body)
        except (ValueError, UnicodeDecodeError) as e:
            return self.error(400, "INVALID_ARGUMENT", f"multipart: {e}")
        to = fields.get("to", "")
        if not E164.match(to):
            return self.error(400, "INVALID_ARGUMENT", f"'to' is not an E.164 number: {to!r}")
        if "file" not in files:
            return self.error(400, "INVALID_ARGUMENT", "no file")
        ctype, pdf = files["file"]
        if ctype != "application/pdf" or not pdf.startswith(b"%PDF-"):
            return self.error(415, "INVALID_ARGUMENT", "the file is not a PDF")
        labels = {}
        if "labels" in fields:
            try:
                labels = json.loads(fields["labels"])
            except ValueError:
                return self.error(400, "INVALID_ARGUMENT", "labels is not JSON")
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                return self.error(400, "INVALID_ARGUMENT", "labels must map strings to strings")
        for name, value in fields.items():
            m = re.match(r"^labels\[([^\]]+)\]$", name)
            if m:
                labels[m.group(1)] = value
        g, args = self.gateway, self.gateway.args
        tail = to[-4:]
        if tail == "0400":
            return self.error(400, "INVALID_ARGUMENT", "the number cannot receive faxes")
        scripted = tail in ("0429", "0500", "0503", "0504", "0996", "0997", "0998",
                            "0999") and g.first_time(to)
        if (scripted and tail == "0429") or g.chance(args.rate_429):
            return self.error(429, "RESOURCE_EXHAUSTED", "too many requests",
                              {"Retry-After": str(args.retry_after)})
        if (scripted and tail == "0500") or g.chance(args.rate_500):
            return self.error(500, "INTERNAL", "internal error")
        if (scripted and tail == "0503") or g.chance(args.rate_503):
            return self.error(503, "UNAVAILABLE", "try again later")
        if scripted and tail == "0997":
            # a gateway that fails after reading the request and before recording anything:
            # the client cannot tell this from a lost reply (the fax does not exist)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if scripted and tail == "0998":
            time.sleep(args.stall_s)  # nothing recorded, no reply in time
            return self.hang_up()
        dropped = (scripted and tail == "0999") or g.want_drop()
        fax = g.create(project, fields, labels, pdf, dropped)
        if dropped:
            self.delay()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if scripted and tail == "0504":
            return self.error(504, "DEADLINE_EXCEEDED", "upstream timed out")
        if scripted and tail == "0996":
            time.sleep(args.stall_s)  # recorded; the reply comes too late
        self.reply(200, g.view(fax))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if not self.check_auth():
            return
        g = self.gateway
        match = PATH_FAX.match(url.path)
        if match:
            if match.group(1) != g.args.project:
                return self.error(404, "NOT_FOUND", "no such project")
            with g.lock:
                fax = g.faxes.get(match.group(2))
            if fax is None:
                return self.error(404, "NOT_FOUND", "no such fax")
            if g.status_log:
                with g.lock:
                    g.status_log.write(json.dumps({"id": fax["id"], "time": time.time()}) + "\n")
            if g.take("stalled_status", g.args.stall_status):
                print("STALLED status", fax["id"], flush=True)
                time.sleep(g.args.stall_s)
            return self.reply(200, g.view(fax))
        match = PATH_FAXES.match(url.path)
        if not match or match.group(1) != g.args.project:
            return self.error(404, "NOT_FOUND", "no such resource")
        query = urllib.parse.parse_qs(url.query)
        prefix = query.get("to", [""])[0]
        size = max(1, min(int(query.get("pageSize", ["20"])[0]), 1000))
        start = int(query.get("pageToken", ["0"])[0] or 0)
        with g.lock:
            found = [g.faxes[i] for i in reversed(g.order) if g.faxes[i]["to"].startswith(prefix)]
        page = found[start:start + size]
        nxt = str(start + size) if start + size < len(found) else ""
        self.reply(200, {"faxes": [g.view(f) for f in page], "totalSize": len(found),
                         "pageSize": size, "nextPageToken": nxt})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--project", default="proj-test")
    p.add_argument("--key-id", default="key-test")
    p.add_argument("--secret", default="secret-test")
    p.add_argument("--token", default="", help="also accept this Bearer token")
    p.add_argument("--log")
    p.add_argument("--save-dir", help="keep each accepted PDF as DIR/<id>.pdf")
    p.add_argument("--queued-s", type=float, default=0.3)
    p.add_argument("--progress-s", type=float, default=0.3)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--slow-rate", type=float, default=0)
    p.add_argument("--slow-ms", type=float, default=0)
    p.add_argument("--rate-429", type=float, default=0)
    p.add_argument("--rate-500", type=float, default=0)
    p.add_argument("--rate-503", type=float, default=0)
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--drop-rate", type=float, default=0)
    p.add_argument("--drop-max", type=int, default=-1, help="-1: no limit")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stall-s", type=float, default=5, help="how long 0998, 0996 and stalls last")
    p.add_argument("--stall-connections", type=int, default=0)
    p.add_argument("--stall-status", type=int, default=0)
    p.add_argument("--callback-format", default="multipart/form-data",
                   choices=["multipart/form-data", "application/json"])
    p.add_argument("--callback-delay-s", type=float, default=0)
    p.add_argument("--callback-jitter-s", type=float, default=0, help="a random 0..S more")
    p.add_argument("--callback-retries", type=int, default=0)
    p.add_argument("--callback-retry-s", type=float, default=1)
    p.add_argument("--callback-log")
    p.add_argument("--callback-save-dir")
    p.add_argument("--status-log", help="one JSON line per status GET: {id, time}")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    args = p.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.gateway = Gateway(args)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print("READY %d" % server.server_address[1], flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
