#!/usr/bin/python3
"""smtp_capture.py DIR [PORT] [--drop-after N] [--delay S] - an SMTP server that keeps what it
receives.

A test peer for crier's email channel (tests/integration/email.sh). Run it with Debian's
/usr/bin/python3, which has python3-aiosmtpd. It listens on 127.0.0.1:PORT (a free port
when PORT is 0 or absent), prints "READY <port>" on stdout once it accepts connections,
and runs until SIGTERM or SIGINT.

Each accepted message is written as DIR/NNNNNN.eml, exactly the DATA bytes as received
(aiosmtpd's envelope.original_content: dot-unstuffed, CRLF line ends, without the final
".\r\n"), and DIR/NNNNNN.json: {"mail_from", "rcpt_tos", "session_id", "dropped"}, where
session_id numbers the connections from 1 and NNNNNN numbers the messages from 1.

Replies are scripted by the local part of the recipient address:
  tempfail-once*  451 4.3.0 at RCPT the first time this address is seen, then accepted
  tempfail*       451 4.3.0 at RCPT, always
  reject*         550 5.1.1 at RCPT
  datafail*       554 5.6.0 after DATA (the content is received, then refused; not kept)
  anything else   250

--drop-after N: when the Nth message of a session has been received (the client has sent
its final "."), the message is kept (marked "dropped": true) and the connection is closed
abruptly, with no reply. That is the worst case of a lost connection (RFC 1047): the
server has the message but the client never hears so, and will send it again.

--delay S: wait S seconds after each DATA before keeping the message and replying: a slow
relay, so that a test can act while a batch is being sent (tests/integration/substitute.sh).
"""
import argparse
import asyncio
import json
import os
import signal
import sys

from aiosmtpd.smtp import SMTP


class Capture:
    def __init__(self, directory, drop_after, delay=0.0):
        self.directory = directory
        self.drop_after = drop_after
        self.delay = delay
        self.messages = 0
        self.sessions = 0
        self.seen = set()  # addresses already answered by tempfail-once

    def session_id(self, session):
        if not hasattr(session, "capture_id"):
            self.sessions += 1
            session.capture_id = self.sessions
            session.capture_messages = 0
        return session.capture_id

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.session_id(session)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("tempfail-once"):
            if address not in self.seen:
                self.seen.add(address)
                return "451 4.3.0 tempfail-once: try again later"
        elif local.startswith("tempfail"):
            return "451 4.3.0 tempfail: try again later"
        elif local.startswith("reject"):
            return "550 5.1.1 reject: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def keep(self, session, envelope, dropped):
        self.messages += 1
        base = os.path.join(self.directory, "%06d" % self.messages)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "session_id": self.session_id(session), "dropped": dropped}
        # the .json last, renamed into place: a reader that sees it sees both files whole
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")

    async def handle_DATA(self, server, session, envelope):
        self.session_id(session)
        session.capture_messages += 1
        if any(a.split("@")[0].lower().startswith("datafail") for a in envelope.rcpt_tos):
            return "554 5.6.0 datafail: message content rejected"
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.drop_after and session.capture_messages == self.drop_after:
            self.keep(session, envelope, True)
            server.transport.abort()  # no reply; connection_lost cancels this coroutine
            await asyncio.get_running_loop().create_future()
        self.keep(session, envelope, False)
        return "250 2.0.0 OK: kept as %06d" % self.messages


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--drop-after", type=int, default=0, metavar="N")
    parser.add_argument("--delay", type=float, default=0.0, metavar="S")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Capture(args.dir, args.drop_after, args.delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="capture.test", data_size_limit=None),
        "127.0.0.1", args.port)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
