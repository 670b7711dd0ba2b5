#!/bin/bash
# connect.sh - `crier config check --connect` against real services: PostgreSQL, an SMTP
# server (smtp_capture.py: EHLO and NOOP, nothing sent) and the fax gateway
# (fax_gateway.py: an authenticated GET), each reported on one line; a failure is exit 69.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  echo "1..0 # SKIP $PY cannot import aiosmtpd (Debian: apt-get install python3-aiosmtpd)"
  exit 0
fi
mkdir -p "$WORK/cap" "$WORK/gw"
start_peer cap "$PY" "$TESTS_DIR/peers/smtp_capture.py" "$WORK/cap" 0
SMTP_PORT=$PORT
export FAX_SECRET=s3cret-for-connect
start_peer gw "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$FAX_SECRET" --token tok \
  --log "$WORK/gw.log" --save-dir "$WORK/gw"
FAX_PORT=$PORT
closed_port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

config() { # SMTP_PORT FAX_SECRET_ENV
  cat >"$WORK/connect.yaml" <<YAML
log: {format: json}
channels:
  email:
    smtp: {host: 127.0.0.1, port: $1, timeout: 5}
    from: "Example Corp <privacy@example.com>"
    bounce_domain: bounces.example.com
  fax: {provider: sinch, base_url: "http://127.0.0.1:$FAX_PORT", project_id: proj-test, key_id: key-test, key_secret_env: $2, timeout: 5s}
YAML
}

"$CRIER" db migrate >/dev/null
config "$SMTP_PORT" FAX_SECRET
run_crier config check --connect "$WORK/connect.yaml"
is "$RC" 0 "everything reachable: exit 0"
like "$OUT" "  database: ok: PostgreSQL [0-9.]+.* as [a-z_]+, schema version [0-9]+$" "the database: server, role and schema version"
like "$OUT" "  smtp: ok: smtp://127.0.0.1:$SMTP_PORT/: EHLO, STARTTLS if offered ok \(250 " "the SMTP relay: EHLO and NOOP answered"
like "$OUT" "  fax gateway: ok: GET http://127.0.0.1:$FAX_PORT/v3/projects/proj-test/faxes/crier-connect-check: HTTP 404 \(reachable, credentials accepted\)" \
  "the fax gateway: an authenticated GET"
is "$(ls "$WORK/cap" | wc -l)" 0 "no message was sent"

export WRONG_SECRET=not-the-secret
config "$closed_port" WRONG_SECRET
run_crier config check --connect "$WORK/connect.yaml"
is "$RC" 69 "a service unreachable: exit 69"
like "$OUT" "  smtp: FAILED: smtp://127.0.0.1:$closed_port/: .*([Cc]onnect|refused)" "a closed SMTP port is named"
like "$OUT" "  fax gateway: FAILED: GET .*: HTTP 401: the gateway refuses the credentials" "a wrong fax secret is named"

PGPORT=1 run_crier config check --connect "$WORK/connect.yaml"
like "$OUT" "  database: FAILED: " "an unreachable database is named"

# --- hold check --mail-to: legal hears of a lapsed hold through the configured relay ----------
config "$SMTP_PORT" FAX_SECRET
# the 30-day oral-hold lapse is HIPAA's (009_oral_lapse.sql): the campaign declares it
printf 'frameworks: HIPAA\n' >hipaa.yaml
"$CRIER" -c "$WORK/connect.yaml" campaign create lapse --incident INC-1 --policy email --meta hipaa.yaml >/dev/null
printf 'ref,name,email\no1,Oral Old,o1@example.com\n' >lapse.csv
"$CRIER" -c "$WORK/connect.yaml" campaign load lapse --csv lapse.csv >/dev/null
# an oral hold placed 31 days ago, backdated as the superuser (holds.sh does the same)
sql "BEGIN; ALTER TABLE crier.hold DISABLE TRIGGER hold_stamp;
     INSERT INTO crier.hold (campaign_id, recipient_ref, authority, official, case_ref, form, reason,
                             placed_at, placed_by, placed_role)
     SELECT id, 'o1', 'FBI', 'SA Roe', 'K-1', 'oral', 'phone call', now() - interval '31 days', 'postgres', 'postgres'
     FROM crier.campaign WHERE name = 'lapse';
     ALTER TABLE crier.hold ENABLE TRIGGER hold_stamp; COMMIT" >/dev/null
run_crier -c "$WORK/connect.yaml" hold check --mail-to "Legal <legal@example.com>" --mail-to counsel@example.com
is "$RC" 1 "hold check still exits 1 with a lapsed hold"
like "$ERR" "mailed to 2 addresses, sent through smtp://127.0.0.1:$SMTP_PORT/" "and says it mailed"
eml=$(ls "$WORK"/cap/*.eml 2>/dev/null | head -1)
ok "one message reached the SMTP server" test -n "$eml"
like "$(cat "$eml" 2>/dev/null)" "Subject: crier: 1 law-enforcement hold needs legal's attention" "its subject"
like "$(cat "$eml" 2>/dev/null | tr -d '\r')" "hold [0-9]+ on campaign lapse \(recipient o1\) LAPSED" "its body names the lapsed hold"
is "$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["rcpt_tos"]))' "${eml%.eml}.json" 2>&1)" \
  "legal@example.com counsel@example.com" "sent to both addresses"
config "$closed_port" FAX_SECRET
run_crier -c "$WORK/connect.yaml" hold check --mail-to legal@example.com
is "$RC" 69 "a relay that cannot be reached: exit 69"
like "$ERR" "crier hold check: mailing legal@example.com: smtp://127.0.0.1:$closed_port/" "saying where it failed"

done_testing
