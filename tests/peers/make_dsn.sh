#!/bin/bash
# make_dsn.sh - real delivery status notifications (RFC 3464) from a real Postfix, for the
# fixtures in tests/data/dsn/ that `crier bounces ingest` is tested on.
#
# How tests/data/dsn/ was made: `sudo tests/peers/make_dsn.sh tests/data/dsn` on Debian 12
# (Postfix 3.7). It starts a throwaway Postfix instance entirely under a temporary
# directory (its own main.cf/master.cf, queue, data directory and log; SMTP on a loopback
# port; no chroot; nothing of the system's Postfix is touched), sends crier-shaped messages
# to it over SMTP (envelope sender bounce+<id>.<token>@localhost, Message-ID
# <crier.<id>.1@localhost>, X-Crier-Notice), lets Postfix bounce or defer them, collects the
# notifications Postfix delivers to the VERP mailbox (a virtual(8) Maildir, and a copy in
# an mbox written by virtual(8)), stops the instance and removes the directory. The files
# are Postfix's bytes as delivered; only their names are chosen here.
#
#   permanent-local.eml    local(8): unknown user, 5.1.1, whole message returned
#   permanent-remote.eml   smtp(8): the next hop (smtp-sink) answered RCPT with
#                          550 5.1.1; RET=HDRS, so text/rfc822-headers
#   delayed.eml            smtp(8): next hop refuses connections; delay warning, 4.4.1
#   expired.eml            the same message once maximal_queue_lifetime passed: Action
#                          failed, Status 4.4.1 (the MTA gave up)
#   msgid-only.eml         unknown user, but the envelope sender is not a VERP address:
#                          only the returned Message-ID names the notice
#   delivered.eml          NOTIFY=SUCCESS: Action delivered (not a bounce)
#   notice.eml             the crier-shaped message itself, as delivered (not a DSN)
#   bounces.mbox           every notification sent to the VERP address, as an mbox
#
# Needs root (Postfix starts only as root), postfix, smtp-sink and python3.
# The notice named in every fixture: id 4294967297 (campaign 1, recipient 1), token below.
set -euo pipefail

out=${1:?usage: make_dsn.sh OUTPUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

NOTICE_ID=4294967297
TOKEN=0123456789abcdef0123456789abcdef
SMTP_PORT=${SMTP_PORT:-10587}
SINK_PORT=${SINK_PORT:-10588}
CLOSED_PORT=${CLOSED_PORT:-10589} # nothing listens here: connections are refused

[ "$(id -u)" -eq 0 ] || { echo "make_dsn.sh: Postfix starts only as root" >&2; exit 77; }

dir=$(mktemp -d /tmp/crier-postfix.XXXXXX)
chmod 755 "$dir" # virtual(8) delivers as nobody and must reach the mailboxes
sink_pid=
stop() {
  postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap stop EXIT

mkdir -p "$dir/etc" "$dir/spool" "$dir/data" "$dir/mail"
chown nobody:nogroup "$dir/mail"
chown postfix "$dir/data"

cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mta.crier.test
mydomain = crier.test
myorigin = \$myhostname
mydestination = \$myhostname
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# accept unknown local users at RCPT, so that local(8) bounces them with a DSN
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
# the VERP domain: bounce+ANYTHING@localhost lands in one Maildir
virtual_mailbox_domains = localhost
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = inline:{ bounce@localhost=bounces/, privacy@localhost=privacy/, someone@localhost=inbox/, copy@localhost=bounces.mbox }
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
# and a copy of each in an mbox (bounces are internal mail: recipient_bcc_maps skips them)
virtual_alias_maps = inline:{ { bounce@localhost = bounce@localhost, copy@localhost } }
transport_maps = inline:{ delay.crier.test=smtp:[127.0.0.1]:$CLOSED_PORT, remote.crier.test=smtp:[127.0.0.1]:$SINK_PORT }
# fast queue: a delay warning after 1 s, give up after 10 s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 1s
maximal_queue_lifetime = 10s
smtp_connect_timeout = 2s
smtputf8_enable = no
biff = no
EOF

cat >"$dir/etc/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# the next hop for remote.crier.test: rejects every RCPT as a real relay would
smtp-sink -u nobody -f RCPT -B "550 5.1.1 <nobody@remote.crier.test>: Recipient address rejected: User unknown in virtual mailbox table" \
  "127.0.0.1:$SINK_PORT" 10 &
sink_pid=$!

# postfix writes its fatal errors to a terminal or syslog only: give it a terminal
pf() { script -qec "postfix -c $dir/etc $*" /dev/null; }
pf check
pf start
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 1)" 2>/dev/null && break
  sleep 0.1
done

# send SENDER RECIPIENT SUBJECT [MAIL_OPTION...] - one crier-shaped message over SMTP
send() {
  python3 - "$SMTP_PORT" "$NOTICE_ID" "$TOKEN" "$@" <<'PY'
import smtplib, sys
from email.message import EmailMessage
from email.utils import formatdate
port, notice_id, token, sender, recipient, subject, *options = sys.argv[1:]
m = EmailMessage()
m["From"] = "Example Corp <privacy@example.com>"
m["To"] = "Affected Person <%s>" % recipient
m["Subject"] = subject
m["Date"] = formatdate(1700000000, usegmt=True)
m["Message-ID"] = "<crier.%s.1@localhost>" % notice_id
m["X-Crier-Notice"] = "%s.%s" % (notice_id, token)
m.set_content("Dear Affected Person,\n\nWe are writing to tell you about an incident.\n",
              charset="utf-8", cte="quoted-printable")
with smtplib.SMTP("127.0.0.1", int(port)) as s:
    s.ehlo("client.crier.test")
    s.send_message(m, from_addr=sender, to_addrs=[recipient],
                   mail_options=[o for o in options if not o.startswith("NOTIFY")],
                   rcpt_options=[o for o in options if o.startswith("NOTIFY")])
PY
}

verp="bounce+$NOTICE_ID.$TOKEN@localhost"
send "$verp" nosuchuser@mta.crier.test "Notice of Data Breach" "RET=FULL" "ENVID=local"
send "$verp" nobody@remote.crier.test "Notice of Data Breach" "RET=HDRS" "ENVID=remote"
send "$verp" somebody@delay.crier.test "Notice of Data Breach" "RET=HDRS" "ENVID=delay"
send privacy@localhost nosuchuser@mta.crier.test "Notice of Data Breach" "ENVID=msgid"
send "$verp" someone@localhost "Notice of Data Breach" "NOTIFY=SUCCESS" "ENVID=success"

# count_new DIR - messages delivered to a Maildir so far
count_new() { find "$dir/mail/$1/new" -type f 2>/dev/null | wc -l; }

# 5 notifications to the VERP address (local, remote, delay warning, expiry, success)
# and one to privacy@; the expiry comes after maximal_queue_lifetime
for _ in $(seq 600); do
  [ "$(count_new bounces)" -ge 5 ] && [ "$(count_new privacy)" -ge 1 ] && [ "$(count_new inbox)" -ge 1 ] && break
  sleep 0.1
done
if [ "$(count_new bounces)" -lt 5 ] || [ "$(count_new privacy)" -lt 1 ]; then
  echo "make_dsn.sh: Postfix did not deliver every notification; its log:" >&2
  cat "$dir/maillog" >&2
  exit 1
fi
sleep 1 # the mbox copy of the last one

# name each notification after what it is
for f in "$dir"/mail/bounces/new/* "$dir"/mail/privacy/new/* "$dir"/mail/inbox/new/*; do
  envid=$(sed -n 's/^Original-Envelope-Id: //p' "$f" | tr -d '\r')
  action=$(sed -n 's/^Action: //p' "$f" | head -1 | tr -d '\r')
  case "$envid/$action" in
  local/failed) name=permanent-local ;;
  remote/failed) name=permanent-remote ;;
  delay/delayed) name=delayed ;;
  delay/failed) name=expired ;;
  msgid/failed) name=msgid-only ;;
  success/delivered) name=delivered ;;
  /) name=notice ;;
  *) echo "make_dsn.sh: unexpected notification $f ($envid/$action)" >&2; exit 1 ;;
  esac
  cp "$f" "$out/$name.eml"
done
cp "$dir/mail/bounces.mbox" "$out/bounces.mbox"
chmod 644 "$out"/*
ls -l "$out"
