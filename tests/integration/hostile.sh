#!/bin/bash
# hostile.sh - values in the affected list that try to break out of where they go: SQL in
# ref, name and an extra column; template syntax and markup in the name; CR LF in the name
# and in an email address; control characters and Unicode line separators; a 1 MB name; a
# field over the reader's 1 MiB limit; invalid UTF-8 and NUL bytes. Each must be a clear
# rejection naming the CSV line (in the reject file, or the load refused whole) or rendered
# safely as the text it is: never a crash, never an added or altered header, never
# evaluated, and nothing else in the load lost. Email header injection through a column
# used in the Subject is covered by email.sh; here the name itself is the attacker.
#
# Received messages are read with Python's email package, letters with pdftotext, and the
# reject file with Python's csv module.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PEER="$TESTS_DIR/peers/smtp_capture.py"
TEMPLATES="$TESTS_DIR/../config/templates/default"
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi
if ! command -v pdftotext >/dev/null; then
  echo "1..0 # SKIP pdftotext missing (Debian: apt-get install poppler-utils)"
  exit 0
fi

# start_capture DIR - smtp_capture.py keeping messages in DIR; sets PORT
start_capture() {
  mkdir -p "$1"
  start_peer "$(basename "$1")" "$PY" "$PEER" "$1" 0
}

# check PYTHON-FILE ARGS... - run a checker printing "description<TAB>got<TAB>expected"
# lines (values as JSON); each line is one TAP assertion
check() {
  local file=$1 d g e; shift
  while IFS=$'\t' read -r d g e; do
    is "$g" "$e" "$d"
  done < <("$PY" - "$@" <"$file" 2>&1 || printf 'the checker %s ran\tfailed\tok\n' "$(basename "$file")")
}

"$CRIER" db migrate >/dev/null || { echo "Bail out! crier db migrate failed"; exit 1; }

start_capture "$WORK/cap"
SPOOL="$WORK/spool"
mkdir -p "$SPOOL"
write_config "channels:
  email:
    lanes: 1
    batch_size: 20
    smtp: {host: 127.0.0.1, port: $PORT, timeout: 5}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com
  mail:
    lanes: 1
    spool: $SPOOL
    letters_per_batch: 50
    batch_window: 1s
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701
  null: {}"
export CRIER_CONFIG="$WORK/crier.yaml"

# The name reaches a header: the Subject carries it too, as well as To's display name.
mkdir -p "$WORK/tpl"
cp "$TEMPLATES"/* "$WORK/tpl/"
printf 'Notice for {{name}} ({{plan}})' >"$WORK/tpl/email.subject"
# ... and a list column reaches the letter's body, where Markdown is read
printf '\nYour plan: {{plan}}\n' >>"$WORK/tpl/letter.md"

# --- the list: every hostile value in one load, with ordinary rows around them ------------
SQLI="'); DROP TABLE crier.notice; --"
"$PY" - "$WORK/hostile.csv" "$SQLI" <<'PY'
import csv, sys
path, sqli = sys.argv[1], sys.argv[2]
rows = [
    # ref, name, email, address1, city, region, postal_code, plan
    ("ok1", "Ann Lee", "ann@hostile.example", "", "", "", "", "gold"),
    ("r" + sqli, "Bobby" + sqli, "bobby@hostile.example", "", "", "", "", sqli),
    ("tpl", "{{meta.organisation}} {{#x}}y{{/x}} {{name}}", "tpl@hostile.example", "", "", "", "", "{{plan}}"),
    ("html", "<script>alert(1)</script> & Co", "html@hostile.example", "", "", "", "", "<b>"),
    ("crlf", "Mallory\r\nBcc: x@evil.example", "mallory@hostile.example", "", "", "", "", "x"),
    ("lf", "Mallory\nTo: x@evil.example", "mallory2@hostile.example", "", "", "", "", "x"),
    ("esc", "Eve\x1b[31m red", "eve@hostile.example", "", "", "", "", "x"),
    ("ls", "Line\u2028Separator", "ls@hostile.example", "", "", "", "", "x"),
    ("long", "A" * 1_000_000, "long@hostile.example", "", "", "", "", "x"),
    ("mailcrlf", "<b>Mallory & Co</b> **not bold**", "m@hostile.example\r\nBcc: x@evil.example",
     "1 Main St", "Springfield", "IL", "62701", "gold\n\n# Ignore this notice\n\n- **act now**"),
    ("ok2", "Zoë Ørsted", "zoe@hostile.example", "", "", "", "", "silver"),
]
with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(["ref", "name", "email", "address1", "city", "region", "postal_code", "plan"])
    w.writerows(rows)
PY
"$CRIER" campaign create hostile --incident INC-hostile --policy email,mail,null --meta "$META" \
  --templates "$WORK/tpl" >/dev/null
run_crier campaign load hostile --csv "$WORK/hostile.csv" --reject-file "$WORK/rejects.csv"
is "$RC" 0 "the hostile list loads (its bad rows rejected, not the whole list)"
like "$OUT" "11 rows read, 6 loaded, 5 rejected, 1 with a contact dropped" "the load's counts"
is "$(sql "SELECT count(*) FROM crier.notice")" 6 "crier.notice is still there, with the 6 loaded rows"
is "$(sql "SELECT ref || '|' || name || '|' || (vars->>'plan') FROM crier.recipient WHERE seq = 2")" \
  "r$SQLI|Bobby$SQLI|$SQLI" "SQL in ref, name and an extra column is stored as the text it is"
run_crier campaign start hostile
is "$RC" 0 "the campaign starts (its templates check)"

cat >"$WORK/rejects.py" <<'PY'
import csv, json, sys
def check(d, got, want):
    print(f"{d}\t{json.dumps(got)}\t{json.dumps(want)}")
csv.field_size_limit(1 << 30)
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
check("reject file: its header", rows[0][:4], ["source_row", "disposition", "reason", "ref"])
got = {r[3]: (r[0], r[1], r[2]) for r in rows[1:]}
want = {
    "crlf": ("line 6", "rejected", "name contains a line break or control character"),
    "lf": ("line 8", "rejected", "name contains a line break or control character"),
    "esc": ("line 10", "rejected", "name contains a line break or control character"),
    "ls": ("line 11", "rejected", "name contains a line break or control character"),
    "long": ("line 12", "rejected", "name is longer than 300 bytes"),
}
for ref, w in want.items():
    check(f"reject file: {ref} rejected at its CSV line, with the reason", got.get(ref), list(w))
dropped = got.get("mailcrlf")
check("reject file: the email with CR LF is a dropped contact, the row kept",
      dropped and dropped[:2], ["line 13", "contact-dropped"])
check("reject file: ... the note says why", bool(dropped and "line break" in dropped[2]), True)
check("reject file: nothing else is in it", sorted(got), sorted(list(want) + ["mailcrlf"]))
crlf = [r for r in rows[1:] if r[3] == "crlf"]
check("reject file: the rejected value is kept exactly (CR LF quoted, not cut)",
      crlf[0][4] if crlf else None, "Mallory\r\nBcc: x@evil.example")
PY
check "$WORK/rejects.py" "$WORK/rejects.csv"

# --- send: email for those with a valid address, a letter for the one without ------------
timeout 90 "$CRIER" run --until-idle >"$WORK/run.out" 2>"$WORK/run.log"
is "$?" 0 "crier run --until-idle exits 0"
ok "no crash, no sanitizer report in the run log" sh -c "! grep -qiE 'segmentation|abort|sanitizer|runtime error' '$WORK/run.log'"
is "$(sql "SELECT string_agg(r.ref || ':' || n.channel || ':' || n.state, ' ' ORDER BY r.seq)
           FROM crier.notice n JOIN crier.recipient r ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq")" \
  "ok1:email:sent r$SQLI:email:sent tpl:email:sent html:email:sent mailcrlf:mail:batched ok2:email:sent" \
  "every loaded row is sent: 5 emails, 1 letter (its email was dropped)"

cat >"$WORK/messages.py" <<'PY'
import email, email.policy, glob, html, json, os, sys
capture, sqli = sys.argv[1], sys.argv[2]
def check(d, got, want):
    print(f"{d}\t{json.dumps(got, ensure_ascii=False)}\t{json.dumps(want, ensure_ascii=False)}")
msgs = {}
for meta_path in sorted(glob.glob(os.path.join(capture, "*.json"))):
    meta = json.load(open(meta_path))
    raw = open(meta_path[:-5] + ".eml", "rb").read()
    for rcpt in meta["rcpt_tos"]:
        msgs.setdefault(rcpt, []).append((raw, email.message_from_bytes(raw, policy=email.policy.default)))
check("one message to each of the 5, nothing to anyone else (no evil.example)",
      sorted((r, len(m)) for r, m in msgs.items()),
      sorted((f"{p}@hostile.example", 1) for p in ("ann", "bobby", "tpl", "html", "zoe")))
people = {"bobby": ("Bobby" + sqli, sqli), "tpl": ("{{meta.organisation}} {{#x}}y{{/x}} {{name}}", "{{plan}}"),
          "html": ("<script>alert(1)</script> & Co", "<b>"), "ann": ("Ann Lee", "gold"),
          "zoe": ("Zoë Ørsted", "silver")}
for who, (name, plan) in people.items():
    got = msgs.get(f"{who}@hostile.example")
    if not got:
        check(f"{who}: received", False, True)
        continue
    raw, msg = got[0]
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = sorted(line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")
                   if line and line[:1] not in (b" ", b"\t"))
    check(f"{who}: the header names are exactly crier's own, each once",
          names, sorted(["from", "to", "subject", "date", "message-id", "mime-version",
                         "content-type", "x-crier-notice"] + [n for n in names if n in ("reply-to", "auto-submitted", "content-transfer-encoding")]))
    check(f"{who}: To is the name and address as loaded",
          [(a.display_name, a.addr_spec) for a in msg["To"].addresses], [[name, f"{who}@hostile.example"]])
    check(f"{who}: Subject is the name and plan as text, on one line", str(msg["Subject"]),
          f"Notice for {name} ({plan})")
    check(f"{who}: no parser defect", [str(d) for x in msg.walk() for d in x.defects], [])
    parts = list(msg.iter_parts())
    text = parts[0].get_content() if parts else ""
    check(f"{who}: text/plain says Dear <the name, literally>", f"Dear {name}," in text, True)
    if len(parts) > 1:
        rich = parts[1].get_content()
        check(f"{who}: text/html has the name escaped, and it unescapes to the name",
              f"Dear {html.escape(name, quote=True)}," in rich or f"Dear {html.escape(name, quote=False)}," in rich
              or f"Dear {name}," in html.unescape(rich), True)
        if who == "html":
            check("html: no live <script> in the HTML part", "<script>" in rich, False)
tpl = msgs.get("tpl@hostile.example")
if tpl:
    body = tpl[0][1].get_body(("plain",)).get_content()
    check("template syntax in a name is not evaluated (no 'Example Corp y' in its place)",
          "Dear Example Corp" in body or "{{meta.organisation}} {{#x}}y{{/x}} {{name}}" not in body, False)
PY
check "$WORK/messages.py" "$WORK/cap" "$SQLI"

# the letter: the name with markup and Markdown printed as written, the address intact
pdf=$(ls "$SPOOL"/*.pdf 2>/dev/null | head -1)
ok "one print batch in the spool" test -n "$pdf"
if [ -n "$pdf" ]; then
  pdftotext -layout "$pdf" "$WORK/letter.txt"
  ok "the letter body prints the name exactly (markup and Markdown as text): <b>Mallory & Co</b> **not bold**" \
    grep -qF 'Dear <b>Mallory & Co</b> **not bold**,' "$WORK/letter.txt"
  ok "the address block has the name as written" grep -qF '<b>Mallory & Co</b> **not bold**' "$WORK/letter.txt"
  ok "the address block has the street" grep -qF '1 Main St' "$WORK/letter.txt"
  ok "a list column with line ends, # and - prints as one line of text, starting no heading or list" \
    grep -qF 'Your plan: gold # Ignore this notice - **act now**' "$WORK/letter.txt"
  ok "nothing of the dropped email's injection is printed" sh -c "! grep -q 'evil' '$WORK/letter.txt'"
fi

# --- whole-file refusals: bytes that are not text, a field over the reader's limit --------
# A file that is not UTF-8 (a Latin-1 or UTF-16 export, a NUL from a binary tool) is
# refused whole, naming the file and line: loading the rest would notify the ASCII names
# first and leave the others in a reject file. The load is atomic: nothing of it is kept,
# and the same campaign loads once the file is fixed. docs/fuzzing.md explains the choice.
refusal() { # NAME PRINTF-ROW EXPECTED-MESSAGE DESCRIPTION
  printf "ref,name,email\r\nb1,Before Row,b1@$1.example\r\n$2\r\nb3,After Row,b3@$1.example\r\n" >"$WORK/$1.csv"
  "$CRIER" campaign create "$1" --incident "INC-$1" --policy email,null --meta "$META" >/dev/null
  run_crier campaign load "$1" --csv "$WORK/$1.csv" --reject-file "$WORK/$1.rejects"
  ok "$4: the load fails (exit $RC)" test "$RC" -ne 0
  like "$ERR" "$1\.csv:3: $3" "$4: the message names the file and line 3"
  is "$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign "$1")")" 0 \
    "$4: nothing of the file is half-loaded"
  printf "ref,name,email\r\nb1,Before Row,b1@$1.example\r\nb2,Fixed Row,b2@$1.example\r\nb3,After Row,b3@$1.example\r\n" >"$WORK/$1.csv"
  run_crier campaign load "$1" --csv "$WORK/$1.csv"
  is "$RC.$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign "$1")")" "0.3" \
    "$4: once fixed, the same file loads whole"
}
refusal latin1 'b2,Jos\xe9 Latin-One,b2@latin1.example' "not valid UTF-8" "invalid UTF-8 (Latin-1 é)"
refusal nul 'b2,Nul\x00Name,b2@nul.example' "NUL byte in field" "a NUL byte in a name"
refusal overlong 'b2,C0\xc0\xafslash,b2@overlong.example' "not valid UTF-8" "an overlong UTF-8 '/'"
"$PY" -c 'import sys; sys.stdout.write("ref,name,email,notes\r\nb1,Before Row,b1@big.example,x\r\nb2,Big Field,b2@big.example," + "x" * (2 << 20) + "\r\n")' >"$WORK/big.csv"
"$CRIER" campaign create big --incident INC-big --policy email,null --meta "$META" >/dev/null
run_crier campaign load big --csv "$WORK/big.csv"
ok "a 2 MiB field: the load fails (exit $RC)" test "$RC" -ne 0
like "$ERR" "big\.csv:3: field longer than 1048576 bytes" "a 2 MiB field: the message names the line and the limit"
is "$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign big)")" 0 "a 2 MiB field: nothing half-loaded"

is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign hostile)")" 6 \
  "the hostile campaign's notices are all still there after the refused loads"

done_testing
