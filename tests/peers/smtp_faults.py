#!/usr/bin/python3
"""smtp_faults.py LOG NAME=FAULT[:TIMES] ... - an SMTP server whose every fault is scripted.

A test peer for crier's email channel under transport faults (tests/fault/smtp.sh). It
speaks the protocol itself, line by line (asyncio streams, standard library only; run it
with Debian's /usr/bin/python3), so that it can misbehave at any step: refuse, stall, hang
up in the middle of DATA, or break the TLS handshake after offering STARTTLS.

Each NAME=FAULT argument opens one listener on 127.0.0.1 (a free port); once all are
listening it prints "READY NAME PORT" for each, then "READY" alone, and runs until SIGTERM
or SIGINT. The fault fires the first TIMES times its step is reached on that listener
(sessions for greeting and TLS faults, commands otherwise); then the listener behaves as a
correct server. TIMES 0 (the default) means always.

  ok              a correct server (250 to everything, keeps each message)
  greeting-421    "421 4.3.2" instead of the greeting, then the connection is closed
  mail-451        451 4.3.0 to MAIL FROM
  rcpt-452        452 4.2.2 to RCPT TO
  rcpt-550-8bit   550 5.1.1 to RCPT TO, its text in Latin-1 (bytes that are not UTF-8)
  data-cmd-554    554 5.3.4 to the DATA command (no 354: nothing is transferred)
  data-451        451 4.3.0 after the message (its final ".") was received
  data-552        552 5.2.2 after the message was received
  drop-data       after 354, reads the first line of the message, then closes the socket
  stall-greeting  accepts the connection and says nothing, ever
  stall-data      after 354, reads the first line of the message, then reads and says
                  nothing more (a server stuck in the middle of DATA)
  stall-dot       reads the whole message (the server has it) and never replies to it
  trickle         a greeting of endless "220-" continuation lines, one every 0.5 s: each
                  line arrives well within any read timeout, the greeting never ends
  tls-garbage     STARTTLS offered; "220 ready" to it, then bytes that are not TLS
  tls-abort       STARTTLS offered; "220 ready" to it, then the connection is closed
  tls-stall       STARTTLS offered; "220 ready" to it, then nothing (handshake never answered)
  tls-ok          STARTTLS offered, handshake with --cert/--key, then a correct server

--cert/--key: the certificate every tls-* listener presents (tls-ok needs them; the
others use them only to offer STARTTLS). --cert-for NAME=CERT,KEY gives one listener its
own (a self-signed one, one for another host name).

LOG gets one JSON line per message that reached its final "." (whatever the reply):
{"listener", "session", "mail_from", "rcpt", "sha256", "bytes", "reply", "tls"}, where
reply is the code sent ("250", "451", ...) or "none" when the server never answered it
(stall-dot). A test counts what each listener received, and duplicates, with it.
"""
import argparse
import asyncio
import hashlib
import json
import signal
import ssl
import sys

GREETING_FAULTS = {"greeting-421", "stall-greeting", "trickle"}
TLS_FAULTS = {"tls-garbage", "tls-abort", "tls-stall"}
FAULTS = GREETING_FAULTS | TLS_FAULTS | {
    "ok", "mail-451", "rcpt-452", "rcpt-550-8bit", "data-cmd-554", "data-451", "data-552", "drop-data",
    "stall-data", "stall-dot", "tls-ok"}


class Listener:
    def __init__(self, name, fault, times, tls, log):
        self.name, self.fault, self.times, self.tls, self.log = name, fault, times, tls, log
        self.fired = 0
        self.sessions = 0

    def fire(self, fault):
        """Does this listener's fault fire now (it is `fault`, and TIMES is not used up)?"""
        if self.fault != fault:
            return False
        if self.times and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def record(self, session, mail_from, rcpt, data, reply, tls):
        self.log.write(json.dumps({
            "listener": self.name, "session": session, "mail_from": mail_from, "rcpt": rcpt,
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "reply": reply,
            "tls": tls}) + "\n")
        self.log.flush()

    async def serve(self, reader, writer):
        self.sessions += 1
        session = self.sessions
        try:
            await self.session(session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError) as e:
            # expected when a fault breaks the session; on stderr for a test to show
            print(f"{self.name} session {session}: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
        finally:
            writer.close()

    async def stall(self, reader):
        """Say nothing, ever; read and drop whatever comes, until the client goes away."""
        while await reader.read(65536):
            pass

    async def session(self, session, reader, writer):
        async def send(line):
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        if self.fire("greeting-421"):
            return await send("421 4.3.2 faults.test service not available, closing")
        if self.fire("stall-greeting"):
            return await self.stall(reader)
        if self.fire("trickle"):
            while not writer.is_closing() and not reader.at_eof():
                await send("220-faults.test still greeting you")
                await asyncio.sleep(0.5)
        await send("220 faults.test ESMTP fault peer")
        tls = False
        mail_from, rcpt = None, []
        while True:
            line = await reader.readline()
            if not line:
                return
            command = line.decode("latin-1").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                offers = ["faults.test", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 52428800"]
                if self.tls and not tls:
                    offers.append("STARTTLS")
                for offer in offers[:-1]:
                    await send("250-" + offer)
                await send("250 " + offers[-1])
            elif verb == "HELO":
                await send("250 faults.test")
            elif verb == "STARTTLS" and self.tls and not tls:
                await send("220 2.0.0 ready to start TLS")
                if self.fire("tls-garbage"):
                    # after the client's ClientHello, so that the garbage always meets its
                    # handshake: written at once, it could arrive with the 220 and be read
                    # as part of that reply, a different fault from the one named here
                    await reader.read(1)
                    writer.write(b"this is not a TLS record\r\n" + bytes(range(256)) * 4)
                    await writer.drain()
                    return
                if self.fire("tls-abort"):
                    return
                if self.fire("tls-stall"):
                    return await self.stall(reader)
                await writer.start_tls(self.tls)
                tls = True
                mail_from, rcpt = None, []
            elif verb == "MAIL":
                if self.fire("mail-451"):
                    await send("451 4.3.0 faults.test cannot take mail from you just now")
                    continue
                mail_from, rcpt = address(command), []
                await send("250 2.1.0 ok")
            elif verb == "RCPT":
                if mail_from is None:
                    await send("503 5.5.1 MAIL first")
                elif self.fire("rcpt-550-8bit"):
                    writer.write(b"550 5.1.1 bo\xeete inconnue, adresse refus\xe9e\r\n")
                    await writer.drain()
                elif self.fire("rcpt-452"):
                    await send("452 4.2.2 faults.test mailbox full, try later")
                else:
                    rcpt.append(address(command))
                    await send("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpt:
                    await send("503 5.5.1 RCPT first")
                    continue
                if self.fire("data-cmd-554"):
                    await send("554 5.3.4 faults.test will not take any message")
                    continue
                await send("354 end with <CRLF>.<CRLF>")
                if self.fire("drop-data"):
                    await reader.readline()
                    writer.transport.abort()
                    return
                if self.fire("stall-data"):
                    await reader.readline()
                    return await self.stall(reader)
                data = bytearray()
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    data += chunk[1:] if chunk.startswith(b".") else chunk
                reply = "250"
                if self.fire("stall-dot"):
                    reply = "none"
                elif self.fire("data-451"):
                    reply = "451"
                elif self.fire("data-552"):
                    reply = "552"
                self.record(session, mail_from, rcpt, bytes(data), reply, tls)
                mail_from, rcpt = None, []
                if reply == "none":
                    return await self.stall(reader)
                await send({"250": "250 2.0.0 ok: queued",
                            "451": "451 4.3.0 faults.test local problem, try again later",
                            "552": "552 5.2.2 faults.test message refused"}[reply])
            elif verb == "RSET":
                mail_from, rcpt = None, []
                await send("250 2.0.0 ok")
            elif verb == "NOOP":
                await send("250 2.0.0 ok")
            elif verb == "QUIT":
                await send("221 2.0.0 bye")
                return
            else:
                await send("500 5.5.2 command not recognised")


def address(command):
    """The <path> of "MAIL FROM:<path> PARAMS" or "RCPT TO:<path>", without the brackets."""
    path = command.split(":", 1)[1].strip() if ":" in command else ""
    path = path.split(" ", 1)[0]
    return path[1:-1] if path.startswith("<") and path.endswith(">") else path


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # No TLS 1.3 session tickets. They arrive after the handshake, and if they are already
    # on the socket when libesmtp 1.1.0 polls to send its EHLO, it reads before it writes:
    # SSL_read consumes the tickets, finds no reply, and waits smtp.timeout for one to a
    # command it has not sent (docs/faults.md, "libesmtp and TLS 1.3 session tickets").
    # That is a timing race, so it is documented there rather than tested here; the
    # tls-ok listener is the control case and must not depend on it.
    context.num_tickets = 0
    return context


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("log")
    p.add_argument("listeners", nargs="+", metavar="NAME=FAULT[:TIMES]")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--cert-for", action="append", default=[], metavar="NAME=CERT,KEY")
    args = p.parse_args()
    log = open(args.log, "a")
    own = {}
    for item in args.cert_for:
        name, _, files = item.partition("=")
        cert, _, key = files.partition(",")
        own[name] = tls_context(cert, key)
    default_tls = tls_context(args.cert, args.key) if args.cert else None
    servers = []
    for item in args.listeners:
        name, _, spec = item.partition("=")
        fault, _, times = spec.partition(":")
        if fault not in FAULTS:
            p.error(f"{name}: unknown fault {fault!r}")
        tls = own.get(name, default_tls) if fault.startswith("tls-") else None
        if fault.startswith("tls-") and tls is None:
            p.error(f"{name}: a tls-* fault needs --cert and --key")
        listener = Listener(name, fault, int(times or 0), tls, log)
        server = await asyncio.start_server(listener.serve, "127.0.0.1", 0)
        servers.append((name, server))
    for name, server in servers:
        print("READY", name, server.sockets[0].getsockname()[1])
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for _, server in servers:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
