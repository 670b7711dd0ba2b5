#!/bin/bash
# json.sh - `--json` on the commands that print a result: each prints exactly one JSON object
# on stdout (parsed here by python3's json module) whose figures agree with the database,
# and nothing else there; the progress line of audit export and verify, on a terminal only.
# Also: which commands take no --json, named, so that a new command that prints data
# without it fails here.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# json_ok DESCRIPTION PYTHON-EXPRESSION - $OUT is one JSON object, d, for which the expression
# holds (and crier exited 0)
json_ok() {
  local what=$1 expr=$2
  ok "$what" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert isinstance(d, dict), "not an object"
if not eval(sys.argv[2]):
    sys.exit("expected %s, got %s" % (sys.argv[2], json.dumps(d)))' "$OUT" "$expr"
  [ "$RC" -eq 0 ] || echo "#   exit $RC: $ERR"
}

run_crier db migrate --json
json_ok "db migrate --json: from 0 to the newest version" 'd["from"] == 0 and d["to"] > 0 and d["migrated"] is True'
to=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["to"])' "$OUT" 2>/dev/null)
run_crier db migrate --json
json_ok "db migrate --json again: nothing to do" "d == {'from': $to, 'to': $to, 'migrated': False, 'find_indexes_built': 0}"
write_config "channels:
  null:"
export CRIER_CONFIG="$WORK/crier.yaml"

# --- the campaign lifecycle ------------------------------------------------------------------
cat >"$WORK/people.csv" <<'CSV'
ref,name,email,address1,city,region,postal_code,country
p1,Ann One,p1@example.com,1 Main St,Springfield,IL,62701,US
p2,Bob Two,p2@example.com,2 Main St,Springfield,IL,62701,US
p3,Cy Three,p3@example.com,,,,,
,No Ref,x@example.com,,,,,
CSV
run_crier campaign create j1 --incident INC-j1 --policy email,mail --meta "$META" --json
json_ok "campaign create --json" "d == {'campaign': 'j1', 'state': 'draft', 'policy': 'email,mail'}"
run_crier campaign load j1 --csv "$WORK/people.csv" --reject-file "$WORK/rejects.csv" --json
json_ok "campaign load --json: 4 rows, 3 loaded, 1 rejected" \
  "d['campaign'] == 'j1' and (d['rows'], d['loaded'], d['rejected']) == (4, 3, 1) and d['load'] > 0 and d['reject_file'].endswith('rejects.csv')"
is "$(sql "SELECT count(*) FROM crier.recipient WHERE $(in_campaign j1)")" 3 "and 3 people are in the database"
run_crier campaign start j1 --json
json_ok "campaign start --json" "d == {'campaign': 'j1', 'done': 'started'}"
run_crier campaign pause j1 --json
json_ok "campaign pause --json" "d == {'campaign': 'j1', 'done': 'paused'}"
run_crier campaign resume j1 --json
json_ok "campaign resume --json" "d == {'campaign': 'j1', 'done': 'resumed'}"
# no crier run serves email: all three wait there; two have a postal address
run_crier campaign reroute j1 --from email --to mail --reason "relay blocklisted" --json
json_ok "campaign reroute --json: 2 moved, 1 left on email" \
  "d == {'campaign': 'j1', 'from': 'email', 'to': 'mail', 'moved': 2, 'left': 1}"
is "$(sql "SELECT count(*) FROM crier.notice WHERE $(in_campaign j1) AND channel = 'mail'")" 2 \
  "and the database has 2 notices on mail"
run_crier campaign cancel j1 --json
json_ok "campaign cancel --json: the 3 notices not yet sent" \
  "d == {'campaign': 'j1', 'done': 'cancelled', 'cancelled_notices': 3}"

# --- ingests ---------------------------------------------------------------------------------
printf 'ref,reason\np1,moved\nnobody,unknown\n' >"$WORK/returns.csv"
run_crier returns ingest "$WORK/returns.csv" --campaign j1 --json
json_ok "returns ingest --json: 2 rows, 1 unknown, 1 not mailed" \
  "d == {'rows': 2, 'recorded': 0, 'already': 0, 'unknown': 1, 'not_mailed': 1, 'forwarded': 0, 'forward_once': 0, 'forward_rejected': 0}"
run_crier bounces ingest "$TESTS_DIR/data/dsn/permanent-remote.eml" --json
json_ok "bounces ingest --json: one message, matching no notice" \
  "d['messages'] == 1 and d['unmatched'] == 1 and d['permanent'] == 0 and set(d) >= {'delayed', 'unparseable', 'duplicate', 'ignored'}"

# --- the sealed log --------------------------------------------------------------------------
rows=$(sql "SELECT count(*) FROM crier.dispatch_log")
run_crier audit seal --json
json_ok "audit seal --json: every log row ($rows)" "d['rows'] == $rows and d['blocks'] >= 1"
run_crier audit export --out "$WORK/log.jsonl" --json
json_ok "audit export --json: the file and its rows" "d == {'file': '$WORK/log.jsonl', 'rows': $rows}"
ok "and the export is there" test -s "$WORK/log.jsonl"

# --- a progress line on a terminal, never in a pipe or with --json ------------------------------
# script(1) runs the command on a pseudo-terminal and copies what it drew
on_tty() { script -qec "$*" /dev/null 2>&1 | tr '\r' '\n'; }
like "$(on_tty "$CRIER" audit export --out "$WORK/tty.jsonl")" "audit export: $rows rows, done" \
  "audit export on a terminal ends its progress line with the count"
like "$(on_tty "$CRIER" audit verify)" "audit verify: $rows rows, done" "audit verify on a terminal: its progress line"
like "$(on_tty "$CRIER" audit verify --file "$WORK/tty.jsonl")" "audit verify --file: [0-9]+ rows, done" \
  "audit verify --file on a terminal: its progress line"
is "$(on_tty "$CRIER" audit verify --json | grep -c 'rows, done')" 0 "audit verify --json on a terminal: none"
like "$(on_tty "$CRIER" audit report j1)" "audit report: [0-9]+ rows, done" \
  "audit report on a terminal: its progress line, one row per notice read"
is "$(on_tty "$CRIER" audit report j1 --json | grep -c 'rows, done')" 0 "audit report --json on a terminal: none"
run_crier audit export --out "$WORK/pipe.jsonl"
run_crier audit verify
is "$(grep -c $'\r\|rows, done' <<<"$ERR$OUT")" 0 "audit export and verify into a pipe: no progress line"

# --- substitute notice (substitute.sh tests write --json) ----------------------------------------
run_crier substitute j1 --json
json_ok "substitute --json: IL's 2 residents and the one without a region; the shipped table does not know IL's rule" \
  "[(j['jurisdiction'], j['residents'], j['verdict']) for j in d['jurisdictions']] == [('IL', 2, 'unknown'), ('unknown', 1, 'unknown')] and d['required'] == []"
run_crier substitute posted j1 --url https://example.com/n --from 2026-11-30 --until 2027-02-28 --json
json_ok "substitute posted --json" \
  "d == {'campaign': 'j1', 'recorded': 'posted', 'url': 'https://example.com/n', 'from': '2026-11-30', 'until': '2027-02-28'}"
run_crier substitute media j1 --outlet "Chicago Tribune" --date 2026-11-30 --state IL --json
json_ok "substitute media --json" \
  "d == {'campaign': 'j1', 'recorded': 'media', 'outlet': 'Chicago Tribune', 'date': '2026-11-30', 'state': 'IL'}"
is "$(sql "SELECT string_agg(kind || ' ' || coalesce(jurisdiction, '-'), ', ' ORDER BY id) FROM crier.substitute_record
           WHERE $(in_campaign j1)")" "posted -, media IL" "and both are in the database"

# --- which commands take --json --------------------------------------------------------------
# Every command whose usage has no --json, with why: it prints no result of its own (it
# acts, and says so on stderr or in a file), or its output is a format of its own.
no_json="config check: checks (one line per problem, FILE:LINE:COL)
campaign proof: writes files into --out
regulators mark-filed: records one row
regulators: writes the packet into --out
run: a daemon
serve: a daemon (its API is JSON: tests/integration/serve.sh)
user add: acts, and says so in one line (roles.sh)
audit log: --format json (JSON lines)
audit unreached: --format json (streamed)"
missing=""
while read -r group name; do
  [[ $name =~ ^[a-z-]+$ ]] || name=""
  cmd="$group${name:+ $name}"
  # shellcheck disable=SC2086
  if ! "$CRIER" $cmd --help | head -3 | grep -q -- '--json'; then
    grep -q "^$cmd:" <<<"$no_json" || missing="$missing, $cmd"
    echo "# no --json: $(grep "^$cmd:" <<<"$no_json")"
  fi
done < <("$CRIER" --help | sed -n 's/^  crier \([a-z]*\) *\([^ ]*\).*/\1 \2/p')
is "${missing#, }" "" "every other command takes --json"

done_testing
