#!/bin/bash
# email.sh - the email channel against a real SMTP server (tests/peers/smtp_capture.py,
# aiosmtpd), with the received bytes parsed by Python's email package as an independent
# MIME parser: envelope (VERP MAIL FROM, one RCPT), headers (From, RFC 2047 To, Subject,
# Date, Message-ID, MIME-Version), multipart/alternative UTF-8 bodies, the CA and MA
# templates, the dispatch log's SHA-256 of the bytes sent, header injection through a
# list column, 4xx retried, 5xx at RCPT and after DATA falling back to the next channel,
# a session dropped in the middle of a batch, relays that refuse or never answer, and
# `audit show` rendering each message again without the lanes' cache, to the same bytes.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# Debian's python3 has python3-aiosmtpd; a python3 earlier on PATH (pyenv) may not.
PEER="$TESTS_DIR/peers/smtp_capture.py"
TEMPLATES="$TESTS_DIR/../config/templates/default"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi

# peers are started here and stopped by lib.sh's EXIT trap (PEERS, stop_peers)

# start_capture DIR [ARGS...] - start smtp_capture.py keeping messages in DIR; sets PORT
start_capture() {
  local dir=$1; shift
  start_peer "$(basename "$dir")" "$PY" "$PEER" "$dir" 0 "$@"
}

# start_silent - a port that accepts TCP connections (kernel backlog) and never says a
# word; sets PORT
start_silent() {
  start_peer silent "$PY" -c 'import socket, signal, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print("READY", s.getsockname()[1], flush=True)
signal.sigwait([signal.SIGTERM])'
}

# closed_port - a loopback port nobody listens on
closed_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- helpers (as in run.sh) ----------------------------------------------------------------
count_notices() {
  local state_filter=""
  [ -n "${2:-}" ] && state_filter="AND state = '$2'"
  sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign "$1") $state_filter"
}
# history NAME REF - "channel:from>to[>to_channel]" words of a notice's transitions
history() {
  sql "SELECT string_agg(channel || ':' || coalesce(from_state, '-') || '>' || to_state
                         || coalesce('>' || to_channel, ''), ' ' ORDER BY id)
       FROM crier.dispatch_log WHERE $(in_campaign "$1") AND recipient_ref = '$2' AND event = 'transition'"
}
# run_until_idle [ARGS...] - crier [ARGS] run --until-idle, bounded to 60 s; sets RC, TOOK
run_until_idle() {
  local started=$EPOCHREALTIME
  timeout 60 "$CRIER" "$@" run --until-idle >"$WORK/out" 2>>"$WORK/run.log"
  RC=$?
  TOOK=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}
# expected NAME - the campaign's notices as JSON: what the received messages must match
expected() {
  sql "SELECT coalesce(json_agg(json_build_object(
         'id', n.id, 'token', n.token, 'ref', r.ref, 'name', r.name, 'email', r.email,
         'region', r.region, 'state', n.state,
         'sent_attempt', (SELECT max(l.attempt) FROM crier.dispatch_log l
                          WHERE l.notice_id = n.id AND l.to_state = 'sent'),
         'sent_sha256', (SELECT string_agg(l.content_sha256, ',') FROM crier.dispatch_log l
                         WHERE l.notice_id = n.id AND l.to_state = 'sent')) ORDER BY n.id), '[]')
       FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq
       WHERE n.$(in_campaign "$1")"
}
# check_messages CHECKER CAPTURE_DIR DOMAIN EXPECTED_JSON - run a Python check that prints
# "description<TAB>got<TAB>expected" lines; each line is one TAP assertion
check_messages() {
  local d g e
  while IFS=$'\t' read -r d g e; do
    is "$g" "$e" "$d"
  done < <("$PY" - "$2" "$3" "$4" <"$WORK/$1.py" 2>&1 || printf 'the %s checker ran\tfailed\tok\n' "$1")
}

# The checker: Python's email package (policy=default, which decodes RFC 2047 and
# validates as it parses) reads every message received for one domain.
cat >"$WORK/messages.py" <<'PY'
import email, email.policy, glob, hashlib, html, json, os, sys
from collections import Counter
from datetime import datetime, timedelta, timezone

capture, domain, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
BOUNCE = "bounces.example.com"
CA_HEADINGS = ["Notice of Data Breach", "What Happened", "What Information Was Involved",
               "What We Are Doing", "What You Can Do", "For More Information"]
WHAT_HAPPENED = "Someone without authorisation copied files"

def check(description, got, want):
    print(f"{description}\t{got}\t{want}")

def failures(items):
    """'' when every item passed, else the first few failures."""
    bad = [i for i in items if i]
    return "" if not bad else f"{len(bad)} bad, e.g. " + " | ".join(bad[:3])

received = []
for meta_path in sorted(glob.glob(os.path.join(capture, "*.json"))):
    meta = json.load(open(meta_path))
    if not all(r.endswith("@" + domain) for r in meta["rcpt_tos"]):
        continue
    raw = open(meta_path[:-5] + ".eml", "rb").read()
    received.append((meta, raw, email.message_from_bytes(raw, policy=email.policy.default)))
by_rcpt = Counter(r for meta, _, _ in received for r in meta["rcpt_tos"])
people = {p["email"]: p for p in expected}

check(f"{len(expected)} messages received for @{domain}", len(received), len(expected))
check("one message per recipient, none to anyone else",
      sorted(by_rcpt.items()), sorted((e, 1) for e in people))
check("every notice is 'sent' with one 'sent' row", failures(
    f"{p['ref']}: {p['state']} {p['sent_sha256']}" for p in expected
    if p["state"] != "sent" or p["sent_sha256"] is None or "," in p["sent_sha256"]), "")

envelope, headers, mime, bodies, hashes, form = [], [], [], [], [], []
now = datetime.now(timezone.utc)
for meta, raw, msg in received:
    to = meta["rcpt_tos"][0]
    p = people.get(to)
    if p is None:
        continue
    tag = p["ref"]
    # envelope: VERP return path with the public token "<id>.<token>", one RCPT
    verp = f"bounce+{p['id']}.{p['token']}@{BOUNCE}"
    envelope.append("" if meta["mail_from"] == verp and meta["rcpt_tos"] == [p["email"]]
                    else f"{tag}: MAIL FROM {meta['mail_from']} RCPT {meta['rcpt_tos']}")
    # headers, each exactly once
    problems = []
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        n = len(msg.get_all(name) or [])
        if n != 1:
            problems.append(f"{n} {name}")
    for name in ("Bcc", "Cc"):
        if msg.get_all(name):
            problems.append(f"has {name}")
    if not problems:
        sender = msg["From"].addresses
        if [(a.display_name, a.addr_spec) for a in sender] != [("Example Corp", "privacy@example.com")]:
            problems.append(f"From {msg['From']!r}")
        addresses = msg["To"].addresses
        if [(a.display_name, a.addr_spec) for a in addresses] != [(p["name"], p["email"])]:
            problems.append(f"To {[(a.display_name, a.addr_spec) for a in addresses]!r}")
        if str(msg["Subject"]) != "Notice of Data Breach from Example Corp":
            problems.append(f"Subject {str(msg['Subject'])!r}")
        date = msg["Date"].datetime
        if date is None or date.tzinfo is None or abs(now - date) > timedelta(hours=1):
            problems.append(f"Date {msg['Date']!r}")
        want_id = f"<crier.{p['id']}.{p['sent_attempt']}@{BOUNCE}>"
        if str(msg["Message-ID"]).strip() != want_id:
            problems.append(f"Message-ID {str(msg['Message-ID'])!r}, want {want_id}")
        if str(msg["MIME-Version"]).strip() != "1.0":
            problems.append(f"MIME-Version {msg['MIME-Version']!r}")
    headers.append(f"{tag}: " + ", ".join(problems) if problems else "")
    # structure: multipart/alternative of text/plain and text/html, both UTF-8, no defects
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    shape = [(x.get_content_type(), x.get_content_charset()) for x in parts]
    defects = [d for x in msg.walk() for d in x.defects]
    mime.append("" if msg.get_content_type() == "multipart/alternative" and not defects and
                shape == [("text/plain", "utf-8"), ("text/html", "utf-8")]
                else f"{tag}: {msg.get_content_type()} {shape} defects {defects}")
    # bodies: the name, exactly, in both parts; CA headings in order; MA without the breach
    problems = []
    if len(parts) == 2:
        text, rich = parts[0].get_content(), html.unescape(parts[1].get_content())
        if f"Dear {p['name']}," not in text:
            problems.append("name not in text/plain")
        if f"Dear {p['name']}," not in rich:
            problems.append("name not in text/html")
        if p["region"] == "CA":
            at = [text.find(h) for h in CA_HEADINGS]
            if not text.startswith("Notice of Data Breach") or -1 in at or at != sorted(at):
                problems.append(f"CA headings at {at}")
            if "Notification was not delayed as a result of a law enforcement investigation" not in text:
                problems.append("CA: no law-enforcement delay sentence")
        if p["region"] == "MA":
            if WHAT_HAPPENED in text or WHAT_HAPPENED in rich:
                problems.append("MA notice describes the breach")
            if "police report" not in text:
                problems.append("MA: no police report")
        elif WHAT_HAPPENED not in text:
            problems.append("what_happened missing")
    bodies.append(f"{tag}: " + ", ".join(problems) if problems else "")
    # the bytes: what crier hashed is what the server received (aiosmtpd's original_content
    # is the DATA payload, dot-unstuffed, CRLF kept, without the terminating ".\r\n")
    hashes.append("" if hashlib.sha256(raw).hexdigest() == p["sent_sha256"]
                  else f"{tag}: received {hashlib.sha256(raw).hexdigest()[:12]}…"
                       f" logged {str(p['sent_sha256'])[:12]}…")
    lines = raw.split(b"\r\n")
    form.append("" if raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
                and b"\r" not in raw.replace(b"\r\n", b"") and max(map(len, lines)) <= 998
                and all(b < 0x80 for b in raw)
                else f"{tag}: bare CR/LF, 8-bit byte or a line over 998 octets")

check("envelope: MAIL FROM bounce+<id>.<token>@bounce_domain, RCPT the recipient only", failures(envelope), "")
check("headers: From, To (UTF-8 name decoded), Subject, Date, Message-ID, MIME-Version once each", failures(headers), "")
check("multipart/alternative: text/plain + text/html, charset utf-8, no parser defects", failures(mime), "")
check("bodies: the name exactly in both parts; CA headings in order; MA without what_happened", failures(bodies), "")
check("SHA-256 of the received bytes == dispatch_log.content_sha256 of the 'sent' row", failures(hashes), "")
check("the bytes are 7-bit, CRLF only, end with CRLF, lines <= 998 octets", failures(form), "")
if any(p["region"] == "CA" for p in expected) and any(p["region"] == "MA" for p in expected):
    regions = Counter(p["region"] for p in expected)
    check("the list has a CA and an MA resident", regions["CA"] >= 1 and regions["MA"] >= 1, True)
PY

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

# --- one capture server; a campaign, header injection and faults in one `crier run` --------
mkdir -p "$WORK/cap"
start_capture "$WORK/cap"
cap_port=$PORT
email_config() { # HOST PORT [EXTRA CHANNEL KEYS]
  write_config "channels:
  email:
    lanes: 2
    batch_size: 10
    smtp: {host: $1, port: $2, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com
    ${3:-}
  null: {}"
}
email_config 127.0.0.1 "$cap_port"
run_crier config check
is "$RC" 0 "the email configuration is valid"

cat >main.csv <<'CSV'
ref,name,email,address1,city,region,postal_code
m01,Nguyễn Văn An,an.nguyen@main.example,1 Main St,Houston,TX,77001
m02,Zofia Wójcik,zofia@main.example,2 Main St,Chicago,IL,60601
m03,Seán Ó Briain,sean@main.example,3 Main St,New York,NY,10001
m04,Carmen Ruiz,carmen@main.example,4 Ocean Ave,Los Angeles,CA,90001
m05,Walter Pierce,walter@main.example,5 Beacon St,Boston,MA,02108
m06,Siobhán O'Neill,siobhan@main.example,6 Main St,Denver,CO,80201
m07,José Álvarez-Núñez,jose@main.example,7 Main St,Miami,FL,33101
m08,Dmitri Ivanov,dmitri@main.example,8 Main St,Seattle,WA,98101
m09,Дмитрий Иванов,dmitriy@main.example,9 Main St,Seattle,WA,98101
m10,田中 花子,hanako@main.example,10 Main St,Phoenix,AZ,85001
m11,Chloé Lefèvre,chloe@main.example,11 Main St,Columbus,OH,43004
m12,Iwona Kowalska,iwona@main.example,12 Main St,Austin,TX,73301
m13,Fatima Okafor,fatima@main.example,13 Main St,Albany,NY,12201
m14,"Smith, John",john.smith@main.example,14 Main St,Dallas,TX,75201
m15,Eoin Ó Ceallaigh,eoin@main.example,15 Main St,San Diego,CA,92101
m16,Giang Trần Thị,giang@main.example,16 Main St,Springfield,MA,01101
m17,Hana Tanaka,hana@main.example,17 Main St,Portland,OR,97201
m18,Ann Lee,ann.lee@main.example,18 Main St,Atlanta,GA,30301
m19,Bob Ray,bob@main.example,19 Main St,Reno,NV,89501
m20,Ana María García López de la Fuente Rodríguez,ana@main.example,20 Main St,Tucson,AZ,85701
CSV
setup main email,null main.csv

# header injection: a list column with CR LF inside a quoted CSV field, used in the subject
mkdir -p "$WORK/tpl"
cp "$TEMPLATES"/* "$WORK/tpl/"
printf 'Notice for {{plan}}' >"$WORK/tpl/email.subject"
printf 'ref,name,email,plan\r\ninj1,Mallory Test,mallory@inject.example,"Mallory\r\nBcc: x@evil.example"\r\n' >inject.csv
setup inject email,null inject.csv --templates "$WORK/tpl"
is "$(sql "SELECT vars->>'plan' FROM crier.recipient WHERE $(in_campaign inject)")" \
  "$(printf 'Mallory\r\nBcc: x@evil.example')" "the CR LF inside the quoted field is loaded as data"

# text only (no email.html), a body with lines that SMTP must dot-stuff (a lone "." would
# end DATA early) and no line end at the end of the template
mkdir -p "$WORK/plain"
cp "$TEMPLATES"/email.subject "$WORK/plain/"
printf 'Dear {{name}},\n.\n..two dots\n.starts with a dot\nno line end at the end' >"$WORK/plain/email.txt"
printf 'ref,name,email\np1,Zoë Ørsted,zoe@plain.example\n' >plain.csv
setup plain email plain.csv --templates "$WORK/plain"

# faults scripted by the capture server on the recipient's local part
cat >faults.csv <<'CSV'
ref,name,email
tf1,Tempfail Once,tempfail-once@faults.example
rj1,Rejected At Rcpt,reject@faults.example
df1,Refused After Data,datafail@faults.example
ok1,Accepted Fine,fine@faults.example
CSV
setup faults email,null faults.csv

run_until_idle
echo "# crier run --until-idle (main, inject, plain, faults) took ${TOOK}s"
is "$RC" 0 "crier run --until-idle exits 0"
is "$(sql "SELECT string_agg(name || ':' || state, ' ' ORDER BY id) FROM crier.campaign")" \
  "main:completed inject:completed plain:completed faults:completed" "every campaign is completed"

# the campaign: every notice sent, and every received message checked by Python's parser
is "$(count_notices main sent)/$(count_notices main)" "20/20" "every notice of the campaign is 'sent'"
check_messages messages "$WORK/cap" main.example "$(expected main)"
# the lanes send with their cache of encoded lines (engine/lib/mime.c); `audit show` renders
# again without it: each of the 20 (five jurisdictions' templates, non-ASCII, long and short
# names, two lanes) must come out byte for byte as sent
unverified=""
for i in $(seq -w 1 20); do
  "$CRIER" audit show main "m$i" >"$WORK/show.out" 2>&1 &&
    grep -q "content verified (re-rendered, same SHA-256)" "$WORK/show.out" || unverified+=" m$i"
done
is "$unverified" "" "audit show re-renders each message without the lane's cache: same SHA-256 as sent"

# text only: one text/plain part, the dot lines intact, the same SHA-256 relation
cat >"$WORK/plain.py" <<'PY'
import email, email.policy, glob, hashlib, json, os, sys
capture, domain, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def check(description, got, want):  # values as JSON: one line each, even with line ends
    print(f"{description}\t{json.dumps(got, ensure_ascii=False)}\t{json.dumps(want, ensure_ascii=False)}")
got = [(json.load(open(p)), open(p[:-5] + ".eml", "rb").read())
       for p in sorted(glob.glob(os.path.join(capture, "*.json")))]
got = [(m, raw) for m, raw in got if m["rcpt_tos"] == ["zoe@plain.example"]]
check("text only: one message", len(got), 1)
if got:
    raw = got[0][1]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check("text only: a single text/plain part, utf-8", (msg.get_content_type(), msg.get_content_charset(),
          msg.is_multipart()), ("text/plain", "utf-8", False))
    check("text only: the body, dot lines intact", msg.get_content().replace("\r\n", "\n").rstrip("\n"),
          "Dear Zoë Ørsted,\n.\n..two dots\n.starts with a dot\nno line end at the end")
    check("text only: SHA-256 of the received bytes == the 'sent' row's", hashlib.sha256(raw).hexdigest(),
          expected[0]["sent_sha256"])
PY
check_messages plain "$WORK/cap" plain.example "$(expected plain)"

# header injection
cat >"$WORK/inject.py" <<'PY'
import email, email.policy, glob, json, os, sys
capture = sys.argv[1]
def check(description, got, want):
    print(f"{description}\t{got}\t{want}")
got = []
for meta_path in sorted(glob.glob(os.path.join(capture, "*.json"))):
    meta = json.load(open(meta_path))
    raw = open(meta_path[:-5] + ".eml", "rb").read()
    if "mallory@inject.example" in meta["rcpt_tos"] or b"evil" in raw:
        got.append((meta, raw))
check("injection: one message, to mallory only", [m["rcpt_tos"] for m, _ in got], [["mallory@inject.example"]])
check("injection: nothing was sent to x@evil.example", any("evil" in r for m, _ in got for r in m["rcpt_tos"]), False)
if got:
    meta, raw = got[0]
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")
             if line and line[:1] not in (b" ", b"\t")]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check("injection: exactly one Subject header line", names.count("subject"), 1)
    check("injection: no Bcc header (raw header names)", "bcc" in names, False)
    check("injection: no Bcc header (parsed)", msg.get_all("Bcc"), None)
    subject = str(msg["Subject"])
    check("injection: the subject is one line", "\r" in subject or "\n" in subject, False)
    check("injection: the subject is the value with CR and LF folded to spaces", subject,
          "Notice for Mallory  Bcc: x@evil.example")
    check("injection: no defect in the message", [d for x in msg.walk() for d in x.defects], [])
PY
check_messages inject "$WORK/cap" inject.example "[]"

# 4xx at RCPT: retried after backoff_min, then sent
is "$(history faults tf1)" "email:ready>sending email:sending>ready email:ready>sending email:sending>sent" \
  "451 at RCPT -> ready on email, retried -> sent"
like "$(sql "SELECT detail FROM crier.dispatch_log WHERE recipient_ref = 'tf1' AND from_state = 'sending' AND to_state = 'ready'")" \
  "^RCPT TO: 451 4\.3\.0 tempfail-once" "the temporary row's detail is the RCPT reply"
is "$(sql "SELECT string_agg(attempt::text, ',' ORDER BY id) FROM crier.dispatch_log WHERE recipient_ref = 'tf1' AND from_state = 'sending'")" \
  "1,2" "two attempts in the dispatch log"
gap=$(sql "SELECT extract(epoch FROM max(at) - min(at)) FROM crier.dispatch_log
           WHERE recipient_ref = 'tf1' AND from_state = 'ready' AND to_state = 'sending'")
ok "the retry came no sooner than backoff_min (1 s): ${gap}s" awk -v g="$gap" 'BEGIN { exit !(g >= 1.0 && g < 10) }'
tf1_id=$(sql "SELECT id FROM crier.notice WHERE $(in_campaign faults) AND recipient_seq = 1")
is "$("$PY" - "$WORK/cap" <<'PY'
import email, email.policy, glob, json, sys
got = [email.message_from_bytes(open(p[:-5] + ".eml", "rb").read(), policy=email.policy.default)["Message-ID"]
       for p in sorted(glob.glob(sys.argv[1] + "/*.json"))
       if json.load(open(p))["rcpt_tos"] == ["tempfail-once@faults.example"]]
print(" ".join(map(str, got)))
PY
)" "<crier.$tf1_id.2@bounces.example.com>" "the 4xx recipient received it once, with the Message-ID of attempt 2"

# 5xx at RCPT and after DATA: permanent, falls back to null
is "$(history faults rj1)" "email:ready>sending email:sending>ready>null null:ready>sending null:sending>delivered" \
  "550 at RCPT -> next channel (null) -> delivered"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE recipient_ref = 'rj1' AND to_channel = 'null'")" \
  "^email: RCPT TO: 550 5\.1\.1 reject" "the fallback row has the RCPT reply as its reason"
is "$(history faults df1)" "email:ready>sending email:sending>ready>null null:ready>sending null:sending>delivered" \
  "554 after DATA -> next channel (null) -> delivered"
like "$(sql "SELECT reason FROM crier.dispatch_log WHERE recipient_ref = 'df1' AND to_channel = 'null'")" \
  "^email: .*554 5\.6\.0 datafail" "the fallback row has the DATA reply as its reason"
is "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref IN ('rj1', 'df1') AND content_sha256 IS NOT NULL")" \
  0 "a refused message has no content hash in the log (nothing was delivered)"
is "$(history faults ok1)" "email:ready>sending email:sending>sent" "the good address in the same batch -> sent"
is "$(sql "SELECT state || ':' || array_to_string(reasons, ';') FROM crier.notice WHERE $(in_campaign faults) AND recipient_seq = 2")" \
  "delivered:email: RCPT TO: 550 5.1.1 reject: no such user" "the notice keeps why it left email"

# --- a session dropped in the middle of a batch ---------------------------------------------
# One lane, one batch of 10 in one session; the server hangs up, without a reply, when the
# 3rd message of every session has been transmitted (and keeps it: RFC 1047's duplicate).
# libesmtp reports per message: #1 and #2 have their 250 (sent); #3 has RCPT 250 but no
# reply to its DATA (temporary: "DATA not completed"); #4..#10 were never started
# (temporary: "not attempted"). So the first session yields exactly 2 'sent'. Every later
# session also drops at its 3rd message: 10 -> 8 -> 6 -> 4 -> 2 left, 5 sessions, and the
# 4 messages in flight at a drop are each received twice; every other one once.
mkdir -p "$WORK/drop"
start_capture "$WORK/drop" --drop-after 3
email_config 127.0.0.1 "$PORT"
sed -i 's/lanes: 2/lanes: 1/' "$WORK/crier.yaml"
seq 1 10 | awk 'BEGIN { print "ref,name,email" } { printf "d%02d,Dropped Person %d,d%02d@drop.example\n", $1, $1, $1 }' >drop.csv
setup drop email drop.csv
run_until_idle
echo "# crier run --until-idle (drop) took ${TOOK}s"
is "$RC" 0 "crier run --until-idle exits 0 (drop)"
is "$(count_notices drop sent)/$(count_notices drop)" "10/10" "every notice is sent in the end"
is "$(sql "SELECT to_state || ':' || count(*) FROM crier.dispatch_log WHERE $(in_campaign drop)
           AND from_state = 'sending' AND attempt = 1 GROUP BY to_state ORDER BY to_state DESC")" \
  "$(printf 'sent:2\nready:8')" "first session: 2 sent (the 250s received), 8 temporary"
is "$(sql "SELECT string_agg(recipient_ref || '=' || split_part(detail, ':', 1), ' ' ORDER BY recipient_ref)
           FROM crier.dispatch_log WHERE $(in_campaign drop) AND from_state = 'sending' AND attempt = 1
           AND to_state = 'ready' AND recipient_ref IN ('d03', 'd04', 'd10')")" \
  "d03=DATA not completed d04=not attempted d10=not attempted" \
  "the one in flight is 'DATA not completed', the rest 'not attempted'"
is "$(sql "SELECT count(*) FROM (SELECT notice_id FROM crier.dispatch_log WHERE $(in_campaign drop)
           AND to_state = 'sent' GROUP BY notice_id HAVING count(*) <> 1) x")" 0 "one 'sent' row per notice"
cat >"$WORK/drop.py" <<'PY'
import glob, json, os, sys
from collections import Counter
capture = sys.argv[1]
def check(description, got, want):
    print(f"{description}\t{got}\t{want}")
metas = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(capture, "*.json")))]
received = Counter(m["rcpt_tos"][0] for m in metas)
dropped = sorted(m["rcpt_tos"][0] for m in metas if m["dropped"])
check("sessions: 5 (10 -> 8 -> 6 -> 4 -> 2 notices left)", len({m["session_id"] for m in metas}), 5)
check("first session: messages 1 and 2 confirmed, 3 dropped in flight",
      [(m["rcpt_tos"][0], m["dropped"]) for m in metas if m["session_id"] == 1],
      [("d01@drop.example", False), ("d02@drop.example", False), ("d03@drop.example", True)])
check("every recipient received the notice", len(received), 10)
check("received twice: exactly the messages in flight at a drop",
      sorted(r for r, n in received.items() if n == 2), dropped)
check("nobody received it more than twice", max(received.values()), 2)
check("4 drops", len(dropped), 4)
PY
check_messages drop "$WORK/drop" drop.example "[]"

# --- relays that refuse or never answer: temporary, no hang, then the next channel ---------
# give_up_after 3s turns the temporary failures into a fallback, so that --until-idle ends.
relay_config() { # PORT TIMEOUT
  cat >"$WORK/relay.yaml" <<YAML
queue: {lease: 30s, backoff_min: 1s, backoff_max: 1s, backoff_jitter: 0, idle_poll: 50, give_up_after: 3s}
log: {format: json}
channels:
  email:
    lanes: 1
    smtp: {host: 127.0.0.1, port: $1, timeout: $2}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
  null: {}
YAML
}
relay_config "$(closed_port)" 5
printf 'ref,name,email\nc1,Closed One,c1@closed.example\nc2,Closed Two,c2@closed.example\n' >closed.csv
setup closed email,null closed.csv
run_until_idle -c "$WORK/relay.yaml"
echo "# crier run --until-idle (closed port) took ${TOOK}s"
is "$RC" 0 "closed port: crier run --until-idle exits 0, no hang, no crash"
ok "closed port: it took less than 20 s (${TOOK}s)" awk -v t="$TOOK" 'BEGIN { exit !(t < 20) }'
like "$(sql "SELECT string_agg(DISTINCT detail, ' | ') FROM crier.dispatch_log WHERE $(in_campaign closed)
             AND from_state = 'sending' AND to_state = 'ready' AND to_channel IS NULL")" \
  "^not attempted: .*[Cc]onnection refused" "closed port: temporary, the detail names the failure"
ok "closed port: retried on email before giving up" \
  test "$(sql "SELECT count(*) FROM crier.dispatch_log WHERE recipient_ref = 'c1' AND from_state = 'sending' AND to_state = 'ready' AND to_channel IS NULL")" -ge 2
is "$(sql "SELECT string_agg(state || '@' || channel, ' ' ORDER BY id) FROM crier.notice WHERE $(in_campaign closed)")" \
  "delivered@null delivered@null" "closed port: after give_up_after both fell back to null"

start_silent
relay_config "$PORT" 1
printf 'ref,name,email\ns1,Silent One,s1@silent.example\n' >silent.csv
setup silent email,null silent.csv
run_until_idle -c "$WORK/relay.yaml"
echo "# crier run --until-idle (silent server, timeout 1 s) took ${TOOK}s"
is "$RC" 0 "silent server: crier run --until-idle exits 0"
ok "silent server: the SMTP timeout bounds each attempt (${TOOK}s < 20 s)" awk -v t="$TOOK" 'BEGIN { exit !(t < 20) }'
# libesmtp's smtp_start_session() succeeds when the server was reached and then timed out;
# email.c's session watch tells the timeout from a hang-up (tests/fault/smtp.sh has more)
like "$(sql "SELECT string_agg(DISTINCT detail, ' | ') FROM crier.dispatch_log WHERE $(in_campaign silent)
             AND from_state = 'sending' AND to_state = 'ready' AND to_channel IS NULL")" \
  "^not attempted: timed out" "silent server: temporary, the detail names the timeout"
is "$(sql "SELECT state || '@' || channel FROM crier.notice WHERE $(in_campaign silent)")" "delivered@null" \
  "silent server: fell back to null after give_up_after"
ok "no crier crashed (no signal exit in the run log)" sh -c "! grep -qiE 'segmentation|abort|sanitizer' '$WORK/run.log'"

done_testing
