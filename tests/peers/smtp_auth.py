#!/usr/bin/python3
"""smtp_auth.py DIR --user U --password P [PORT] - an SMTP server that wants AUTH, and tells.

A test peer for crier's handling of the SMTP password (tests/integration/secrets.sh). Run it
with Debian's /usr/bin/python3 (python3-aiosmtpd). It listens on 127.0.0.1:PORT (a free
port when PORT is 0 or absent), prints "READY <port>" once it accepts connections, and runs
until SIGTERM or SIGINT. It offers AUTH PLAIN and LOGIN without TLS (a test on loopback).

A session that authenticated as U with P may send: each message is kept as DIR/NNNNNN.eml.
It is also hostile in the one way that matters here: every refusal repeats the credentials
the client sent, in clear and as the client encoded them, so that a client that copies a
server's words into its logs would leak its own password:
  AUTH with wrong credentials   535 5.7.8 ... (user, password and the base64 sent)
  MAIL without a good AUTH      530 5.7.0 ... (the same)
DIR/auth.log gets one line per AUTH attempt: "ok USER" or "bad USER" (never the password).
"""
import argparse
import asyncio
import base64
import os
import signal
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, user, password):
        self.directory = directory
        self.user = user.encode()
        self.password = password.encode()
        self.messages = 0

    def tell(self, session):
        sent = getattr(session, "crier_sent", None)
        if sent is None:
            return "no credentials"
        login, password = sent
        blob = base64.b64encode(b"\0" + login + b"\0" + password).decode()
        return "you sent user %s password %s (%s)" % (login.decode(errors="replace"),
                                                       password.decode(errors="replace"), blob)

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        session.crier_sent = (auth_data.login, auth_data.password)
        good = auth_data.login == self.user and auth_data.password == self.password
        with open(os.path.join(self.directory, "auth.log"), "a") as f:
            f.write("%s %s\n" % ("ok" if good else "bad", auth_data.login.decode(errors="replace")))
        if good:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 bad credentials: " + self.tell(session))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated:
            return "530 5.7.0 authentication required: " + self.tell(session)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        with open(os.path.join(self.directory, "%06d.eml" % self.messages), "wb") as f:
            f.write(envelope.original_content)
        return "250 OK"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    handler = Handler(args.dir, args.user, args.password)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(handler, authenticator=handler.authenticator, auth_required=False,
                    auth_require_tls=False, hostname="auth.test")

    server = await loop.create_server(factory, "127.0.0.1", args.port)
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
