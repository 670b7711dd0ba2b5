#!/bin/bash
# demo.sh - crier's main job end to end on a fresh Debian 12 machine: installs what is
# missing, builds, starts a throwaway PostgreSQL (pg_virtualenv), a local SMTP server that
# keeps what it receives (tests/peers/smtp_capture.py) and a test fax gateway
# (tests/peers/fax_gateway.py), and runs the sample campaign in config/sample/: migrate,
# create, load (with rejects), proof, start, run until idle, status, the emails received,
# the faxes, the print batch, and the dispatch log of one person.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
.ci/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

work=$(mktemp -d /tmp/crier-demo.XXXXXX)
smtp_pid=""
fax_pid=""
cleanup() {
  [ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null
  [ -n "$fax_pid" ] && kill "$fax_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# the SMTP server: Debian's python3 has aiosmtpd
mkdir -p "$work/mail"
/usr/bin/python3 tests/peers/smtp_capture.py "$work/mail" 0 >"$work/smtp.out" 2>"$work/smtp.err" &
smtp_pid=$!
for _ in $(seq 50); do grep -q READY "$work/smtp.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/READY/ {print $2}' "$work/smtp.out")
[ -n "$port" ] || { echo "demo: the SMTP server did not start"; cat "$work/smtp.err"; exit 1; }

# the fax gateway
mkdir -p "$work/faxes" "$work/spool"
chmod 0750 "$work/spool" # letters carry names and addresses: crier refuses a spool open to others
/usr/bin/python3 tests/peers/fax_gateway.py --port 0 --secret demo-secret \
  --save-dir "$work/faxes" >"$work/fax.out" 2>"$work/fax.err" &
fax_pid=$!
for _ in $(seq 50); do grep -q READY "$work/fax.out" 2>/dev/null && break; sleep 0.1; done
fax_port=$(awk '/READY/ {print $2}' "$work/fax.out")
[ -n "$fax_port" ] || { echo "demo: the fax gateway did not start"; cat "$work/fax.err"; exit 1; }
export CRIER_FAX_SECRET=demo-secret

sed -e "s/port: 2525/port: $port/" -e "s|127.0.0.1:8025|127.0.0.1:$fax_port|" \
  -e "s|spool: /var/spool/crier|spool: $work/spool|" config/sample/crier.yaml >"$work/crier.yaml"
export CRIER=$top/build/crier CRIER_CONFIG=$work/crier.yaml SAMPLE=$top/config/sample WORK=$work
pg_virtualenv -t bash -euo pipefail -c '
  say() { printf "\n\$ %s\n" "$*"; "$@"; }
  say "$CRIER" db migrate
  say "$CRIER" campaign create acme-2026-11 --incident INC-4711 --policy email,fax,mail \
      --meta "$SAMPLE/incident.yaml"
  say "$CRIER" campaign load acme-2026-11 --csv "$SAMPLE/affected.csv" --reject-file "$WORK/rejects.csv"
  printf "\n\$ cat rejects.csv\n"; cat "$WORK/rejects.csv"
  say "$CRIER" campaign proof acme-2026-11 --out "$WORK/proofs"
  say "$CRIER" campaign start acme-2026-11
  say "$CRIER" run --until-idle
  say "$CRIER" status acme-2026-11
  printf "\n\$ the messages the SMTP server received\n"
  /usr/bin/python3 - "$WORK/mail" <<'"'"'PY'"'"'
import email, email.policy, glob, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    print(f"  {m['"'"'To'"'"']:<44} {m['"'"'Subject'"'"']}")
PY
  printf "\n\$ the faxes the gateway received\n"
  for f in "$WORK"/faxes/*.pdf; do
    printf "  %s: %s\n" "$(basename "$f")" "$(pdftotext "$f" - | grep -m1 "^Dear")"
  done
  say "$CRIER" batch list acme-2026-11
  printf "\n\$ ls spool/\n"; ls "$WORK/spool"
  for pdf in "$WORK"/spool/B*.pdf; do
    printf "\n\$ pdfinfo %s | grep Pages\n" "$(basename "$pdf")"; pdfinfo "$pdf" | grep Pages
  done
  say "$CRIER" audit log acme-2026-11 --recipient S003
  # the print house mailed the batch: record it, and the campaign can complete
  for batch in $("$CRIER" batch list acme-2026-11 --json | python3 -c "import json,sys; print(\" \".join(b[\"batch\"] for b in json.load(sys.stdin)))"); do
    say "$CRIER" batch mark-mailed "$batch" --date "$(date -u +%F)" --evidence "USPS PS Form 3602 (demo)"
  done
  "$CRIER" run --until-idle 2>/dev/null
  say "$CRIER" status acme-2026-11
  state=$("$CRIER" status acme-2026-11 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")
  [ "$state" = completed ] || { echo "demo: campaign is $state, expected completed"; exit 1; }
  # what an auditor does: the sealed log is intact, and what S003 was sent is proven
  say "$CRIER" audit verify
  say "$CRIER" audit show acme-2026-11 S003
  echo "demo: campaign acme-2026-11 completed"
'
