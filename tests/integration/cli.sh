#!/bin/bash
# cli.sh - the command line contract: help, usage errors and their exit codes, what crier
# says when the database is missing or not migrated, and the campaign lifecycle as an
# operator drives it (create, list, start, pause, resume, cancel, status).
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

STATES="ready held sending sent submitted delivered batched mailed undeliverable cancelled"

# campaign_events NAME - the campaign's lifecycle as "from>to" words, oldest first
campaign_events() {
  sql "SELECT string_agg(coalesce(l.from_state, '-') || '>' || l.to_state, ' ' ORDER BY l.id)
       FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
       WHERE c.name = '$1' AND l.event = 'campaign'"
}

# --- help: crier and every command answer --help with their usage, exit 0 ---------------
run_crier --help
is "$RC" 0 "crier --help exits 0"
like "$OUT" '^usage: crier \[-c FILE\] \[--log-level LEVEL\] COMMAND \[ARGS\]' "crier --help prints the usage"
main_help=$OUT
for cmd in "db migrate" "config check" "campaign create" "campaign load" "campaign start" \
  "campaign pause" "campaign resume" "campaign cancel" "campaign list" "run" "status"; do
  read -ra words <<<"$cmd"
  run_crier "${words[@]}" --help
  is "$RC" 0 "crier $cmd --help exits 0"
  like "$OUT" "^usage: crier \[-c FILE\] $cmd" "crier $cmd --help prints its usage"
  like "$main_help" "crier $cmd" "crier --help lists '$cmd'"
done
run_crier campaign --help
is "$RC" 0 "crier campaign --help exits 0"
like "$OUT" "crier campaign create NAME --incident REF" "crier campaign --help lists the subcommands"
# every group of the command table lists its commands when given none (a usage error);
# a group that is also a command of its own (substitute, regulators) runs that instead
for group in $(printf '%s\n' "$main_help" | awk '$1 == "crier" && NF > 1 {
    if (NF > 2 && $3 ~ /^[a-z]/) sub_[$2] = 1; else own[$2] = 1 }
  END { for (g in sub_) if (!(g in own)) print g }' | sort); do
  run_crier "$group"
  is "$RC" 64 "crier $group alone: 64"
  like "$ERR" "^crier $group commands:" "crier $group alone lists its commands"
done
run_crier user --help
is "$RC" 0 "crier user --help exits 0"
like "$OUT" "crier user add NAME" "crier user --help lists 'user add' (the group was missing from a list of its own)"

# --- version -----------------------------------------------------------------------------
run_crier --version
is "$RC" 0 "crier --version exits 0"
like "$OUT" '^crier [0-9]+\.[0-9]+\.[0-9]+$' "crier --version prints 'crier X.Y.Z'"

# --- usage errors: EX_USAGE (64), before touching the database ----------------------------
run_crier
is "$RC" 64 "no command: 64"
run_crier bogus
is "$RC" 64 "unknown command: 64"
is "$ERR" "crier: unknown command 'bogus' (see crier --help)" "unknown command is named"
run_crier campaign bogus
is "$RC" 64 "unknown campaign subcommand: 64"
like "$ERR" "unknown command 'campaign bogus'" "unknown subcommand is named"
run_crier --bogus
is "$RC" 64 "unknown global option: 64"
like "$ERR" "^crier: unknown option '--bogus'" "unknown global option is named"
run_crier campaign list --bogus
is "$RC" 64 "unknown command option: 64"
is "$ERR" "crier campaign list: unknown option '--bogus' (see crier campaign list --help)" \
  "unknown command option is named"
run_crier -c
is "$RC" 64 "-c without a value: 64"
run_crier campaign create nameonly
is "$RC" 64 "campaign create without --incident: 64"
is "$ERR" "crier campaign create: --incident REF is required (the incident this campaign notifies about)" \
  "missing --incident is explained"
run_crier campaign create --incident INC-1
is "$RC" 64 "campaign create without NAME: 64"
like "$ERR" "missing campaign NAME" "missing NAME is explained"
run_crier campaign create x --incident
is "$RC" 64 "--incident without a value: 64"
like "$ERR" "option '--incident' needs a value" "option without a value is explained"
run_crier campaign load x
is "$RC" 64 "campaign load without a source: 64"
like "$ERR" "give exactly one of --csv FILE, --table SCHEMA.TABLE, --query SQL" "load source is required"
run_crier campaign load x --csv a.csv --query "SELECT 1"
is "$RC" 64 "campaign load with two sources: 64"
run_crier campaign start
is "$RC" 64 "campaign start without NAME: 64"
run_crier status one two
is "$RC" 64 "status with two names: 64"
like "$ERR" "unexpected argument 'two'" "extra argument is named"
run_crier run extra
is "$RC" 64 "run with an argument: 64"

# --- database unreachable: EX_UNAVAILABLE (69), one line on stderr, no crash -------------
for cmd in "campaign list" "db migrate" "status"; do
  read -ra words <<<"$cmd"
  PGHOST=127.0.0.1 PGPORT=1 run_crier "${words[@]}"
  is "$RC" 69 "$cmd with the database unreachable: 69"
  is "$(printf '%s\n' "$ERR" | wc -l)" 1 "$cmd with the database unreachable: one line on stderr"
  like "$ERR" "^crier $cmd: cannot connect to PostgreSQL: " "$cmd says it cannot connect"
done
PGHOST=127.0.0.1 PGPORT=1 run_crier run --until-idle
is "$RC" 69 "run with the database unreachable: 69"
is "$(printf '%s\n' "$ERR" | wc -l)" 1 "run with the database unreachable: one line on stderr"
like "$ERR" "cannot connect to PostgreSQL" "run says it cannot connect"

# --- schema not migrated: EX_CONFIG (78), and the message says what to do ------------------
# the newest migration this source tree embeds (engine/core/sql/NNN_name.sql)
latest=$(find "$TESTS_DIR/../engine/core/sql" -name '[0-9][0-9][0-9]_*.sql' -printf '%f\n' | sort | tail -1)
latest=$((10#${latest%%_*}))
migrations=$(find "$TESTS_DIR/../engine/core/sql" -name '[0-9][0-9][0-9]_*.sql' | wc -l)
run_crier campaign list
is "$RC" 78 "campaign list before db migrate: 78"
is "$ERR" "crier campaign list: the database schema is at version 0, this crier needs $latest: run 'crier db migrate'" \
  "campaign list before db migrate tells to run 'crier db migrate'"
run_crier status
is "$RC" 78 "status before db migrate: 78"
like "$ERR" "run 'crier db migrate'" "status before db migrate tells to run 'crier db migrate'"
run_crier run --until-idle
is "$RC" 78 "run before db migrate: 78"
like "$ERR" "run 'crier db migrate'" "run before db migrate tells to run 'crier db migrate'"

# --- db migrate: creates the schema once; a second run has nothing to do ------------------
run_crier db migrate
is "$RC" 0 "db migrate exits 0"
is "$OUT" "schema migrated from version 0 to $latest" "db migrate reports the migration"
run_crier db migrate
is "$RC" 0 "second db migrate exits 0"
is "$OUT" "schema is at version $latest: nothing to do" "second db migrate has nothing to do"
is "$(sql "SELECT count(*) FROM crier.schema_migration")" "$migrations" "schema_migration has one row per migration"

# --- campaign create: names, policies and metadata are checked ----------------------------
run_crier campaign create breach-2024 --incident INC-1
is "$RC" 0 "campaign create exits 0"
is "$OUT" "campaign breach-2024 created (draft, policy email,fax,mail)" "campaign create confirms"
is "$(sql "SELECT state || ' ' || incident || ' ' || array_to_string(policy, ',') FROM crier.campaign WHERE name = 'breach-2024'")" \
  "draft INC-1 email,fax,mail" "the campaign is stored in draft with the default policy"
run_crier campaign create breach-2024 --incident INC-2
is "$RC" 65 "duplicate campaign name: 65"
is "$ERR" "crier campaign create: a campaign named 'breach-2024' already exists" "duplicate name is explained"
is "$(sql "SELECT count(*) FROM crier.campaign WHERE name = 'breach-2024'")" 1 "still one campaign of that name"
run_crier campaign create "has spaces" --incident INC-1
is "$RC" 65 "campaign name with spaces: 65"
is "$ERR" "crier campaign create: invalid campaign name 'has spaces': names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit" "bad name is explained"
run_crier campaign create pigeons --incident INC-1 --policy email,pigeon
is "$RC" 65 "unknown channel in --policy: 65"
is "$ERR" "crier campaign create: unknown channel 'pigeon' in policy (channels: email, fax, mail, null, test)" \
  "unknown channel is named"
run_crier campaign create twice --incident INC-1 --policy email,fax,email
is "$RC" 65 "channel twice in --policy: 65"
like "$ERR" "channel 'email' appears twice in policy" "repeated channel is named"
is "$(sql "SELECT count(*) FROM crier.campaign")" 1 "no refused campaign was created"

# --meta: a YAML mapping kept as JSON, every scalar a string
cat >"$WORK/meta.yaml" <<'YAML'
agency: FBI
case: "0412"
count: 12
contacts: [legal@example.com, ciso@example.com]
office:
  city: Springfield
YAML
run_crier campaign create with-meta --incident INC-3 --meta meta.yaml
is "$RC" 0 "campaign create --meta exits 0"
is "$(sql "SELECT meta = '{\"agency\": \"FBI\", \"case\": \"0412\", \"count\": \"12\",
                           \"contacts\": [\"legal@example.com\", \"ciso@example.com\"],
                           \"office\": {\"city\": \"Springfield\"}}'::jsonb
           FROM crier.campaign WHERE name = 'with-meta'")" t "--meta YAML is stored in campaign.meta as JSON"
printf 'agency: FBI\noffice: Springfield: IL\n' >"$WORK/meta-bad.yaml"
run_crier campaign create bad-meta --incident INC-4 --meta meta-bad.yaml
is "$RC" 65 "--meta with a YAML syntax error: 65"
is "$ERR" "crier campaign create: meta-bad.yaml:2:20: mapping values are not allowed in this context" \
  "--meta syntax error is reported as FILE:LINE:COL"
run_crier campaign create no-meta --incident INC-4 --meta missing.yaml
is "$RC" 66 "--meta with a missing file: 66"
is "$(sql "SELECT count(*) FROM crier.campaign WHERE name IN ('bad-meta', 'no-meta')")" 0 \
  "no campaign was created from bad metadata"

# --- campaign list, as a table and as JSON -----------------------------------------------
run_crier campaign list
is "$RC" 0 "campaign list exits 0"
like "$OUT" '^NAME +INCIDENT +STATE +POLICY +NOTICES +CREATED' "campaign list has a header"
like "$OUT" 'breach-2024 +INC-1 +draft +email,fax,mail +0 ' "campaign list shows a campaign"
run_crier campaign list --json
is "$RC" 0 "campaign list --json exits 0"
ok "campaign list --json is valid JSON" python3 -c 'import json,sys; json.load(sys.stdin)' <<<"$OUT"
is "$(python3 -c 'import json,sys; print(" ".join(c["name"] + ":" + c["state"] + ":" + ",".join(c["policy"]) for c in json.load(sys.stdin)))' <<<"$OUT")" \
  "breach-2024:draft:email,fax,mail with-meta:draft:email,fax,mail" "campaign list --json names every campaign"

# --- refused transitions: start with no recipients, pause a draft ------------------------
run_crier campaign start breach-2024
is "$RC" 65 "start on an empty campaign: 65"
is "$ERR" "crier campaign start: cannot start campaign 'breach-2024': no recipients loaded (crier campaign load)" \
  "start on an empty campaign is explained"
run_crier campaign pause breach-2024
is "$RC" 65 "pause on a draft: 65"
is "$ERR" "crier campaign pause: cannot pause campaign 'breach-2024': it is draft" "pause on a draft is explained"
run_crier campaign resume breach-2024
is "$RC" 65 "resume on a draft: 65"
run_crier campaign start nope
is "$RC" 65 "start of an unknown campaign: 65"
like "$ERR" "no campaign named 'nope'" "unknown campaign is named"
is "$(campaign_events breach-2024)" "->draft" "refused transitions wrote no log row"

# --- status --json: every state key and every policy channel, zeros included --------------
run_crier status breach-2024 --json
is "$RC" 0 "status --json exits 0"
is "$(python3 -c '
import json, sys
states = sys.argv[1].split()
d = json.load(sys.stdin)
ok = (d["campaign"] == "breach-2024" and d["state"] == "draft" and d["total"] == 0
      and d["by_state"] == {s: 0 for s in states}
      and list(d["by_channel"]) == ["email", "fax", "mail"]
      and all(v == {s: 0 for s in states} for v in d["by_channel"].values()))
print("complete" if ok else json.dumps(d))' "$STATES" <<<"$OUT")" complete \
  "status --json has all 10 state keys at zero, and by_channel for email, fax, mail"
run_crier status nope --json
is "$RC" 65 "status of an unknown campaign: 65"
is "$ERR" "crier status: no campaign named 'nope'" "status names the unknown campaign"

# --- the lifecycle: start, pause, resume, cancel, each logged ------------------------------
printf 'ref,name,email\nu1,Ann,ann@example.com\nu2,Bob,bob@example.com\nu3,Cy,cy@example.com\n' >"$WORK/three.csv"
run_crier campaign create life --incident INC-5 --meta "$META"
run_crier campaign load life --csv three.csv
is "$RC" 0 "three recipients loaded"
run_crier campaign start life
is "$RC:$OUT" "0:campaign life started" "start a loaded draft"
run_crier campaign start life
is "$RC" 65 "start a running campaign: 65"
run_crier campaign pause life
is "$RC:$OUT" "0:campaign life paused" "pause a running campaign"
run_crier campaign resume life
is "$RC:$OUT" "0:campaign life resumed" "resume a paused campaign"
run_crier campaign cancel life
is "$RC:$OUT" "0:campaign life cancelled: 3 notices not yet sent were cancelled" "cancel a running campaign"
is "$(campaign_events life)" "->draft draft>running running>paused paused>running running>cancelled" \
  "each transition wrote one event='campaign' row"
is "$(sql "SELECT count(*) FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
           WHERE c.name = 'life' AND l.event = 'campaign' AND l.actor = session_user")" 5 \
  "the campaign rows name the database user as actor"
is "$(sql "SELECT state || ':' || (finished_at IS NOT NULL) FROM crier.campaign WHERE name = 'life'")" \
  "cancelled:true" "the campaign is cancelled with a finish time"
is "$(sql "SELECT string_agg(n.state, ',') FROM crier.notice n JOIN crier.campaign c ON c.id = n.campaign_id
           WHERE c.name = 'life'")" "cancelled,cancelled,cancelled" "cancel turned every ready notice into cancelled"
is "$(sql "SELECT count(DISTINCT l.notice_id) || '/' || count(*) FROM crier.dispatch_log l
           JOIN crier.campaign c ON c.id = l.campaign_id
           WHERE c.name = 'life' AND l.event = 'transition' AND l.from_state = 'ready'
           AND l.to_state = 'cancelled' AND l.detail = 'campaign cancelled'")" "3/3" \
  "cancel wrote one transition row per notice"
run_crier campaign resume life
is "$RC" 65 "resume a cancelled campaign: 65"
like "$ERR" "cannot resume campaign 'life': it is cancelled" "resume after cancel is explained"
run_crier status life --json
is "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["total"], d["by_state"]["cancelled"], d["by_channel"]["email"]["cancelled"])' <<<"$OUT")" \
  "cancelled 3 3 3" "status --json counts the cancelled notices, overall and by channel"
run_crier status --json
is "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$OUT")" 3 \
  "status --json without a name is an array of every campaign"

# --- start checks every template against the variables the notices will have ------------
run_crier campaign create nometa --incident INC-7
run_crier campaign load nometa --csv three.csv
run_crier campaign start nometa
is "$RC" 65 "start when the templates use metadata the campaign lacks: 65"
like "$ERR" "email\.txt:[0-9]+:[0-9]+: unknown variable 'meta\.organisation'" \
  "the unknown variable is named with FILE:LINE:COL"
like "$ERR" "crier campaign start: campaign nometa not started: its templates need fixing" \
  "and the campaign is said not to be started"
is "$(sql "SELECT state FROM crier.campaign WHERE name = 'nometa'")" draft "it stays in draft"

# --- proof: sample notices per jurisdiction, nothing sent ----------------------------------
printf 'ref,name,email,fax,address1,city,region,postal_code\np1,Ann Cal,ann@example.com,,1 A St,Los Angeles,CA,90012\np2,Bo Mass,,+16175550123,2 B St,Boston,MA,02108\np3,Cy Cal,cy@example.com,,3 C St,San Diego,CA,92101\n' >"$WORK/proof.csv"
run_crier campaign create proofed --incident INC-8 --meta "$META"
run_crier campaign load proofed --csv proof.csv
run_crier campaign proof proofed --out "$WORK/proofs"
is "$RC" 0 "campaign proof exits 0"
is "$(cd "$WORK/proofs" && ls | tr '\n' ' ')" \
  "CA-p1-email.eml CA-p1-letter.md CA-p1-letter.pdf MA-p2-fax.pdf MA-p2-letter.md MA-p2-letter.pdf " \
  "one sample per jurisdiction, for each channel that can reach them"
# the PDFs are the letter and the fax themselves, read back by poppler
like "$(pdftotext -layout "$WORK/proofs/CA-p1-letter.pdf" -)" "Ann Cal" "the printed letter is addressed to its person"
like "$(pdftotext -layout "$WORK/proofs/CA-p1-letter.pdf" -)" "Notice of Data Breach" "and carries the letter's body"
like "$(pdftotext -layout "$WORK/proofs/MA-p2-fax.pdf" -)" "Bo Mass" "the fax is addressed to its person"
like "$(pdfinfo "$WORK/proofs/MA-p2-fax.pdf")" "Page size: +612 x 792 pts" "and is a US Letter PDF"
ok "the California email has the statutory title" grep -q "Notice of Data Breach" "$WORK/proofs/CA-p1-email.eml"
is "$(sql "SELECT count(*) FROM crier.dispatch_log l JOIN crier.campaign c ON c.id = l.campaign_id
           WHERE c.name = 'proofed' AND l.event = 'transition'")" 0 "proof sends nothing and changes no notice"
run_crier campaign proof proofed
is "$RC" 64 "proof without --out: 64"

# --- -c after the command name, as before it ----------------------------------------------------
run_crier status -c "$WORK/no-such.yaml"
is "$RC:$ERR" "78:$WORK/no-such.yaml: cannot open: No such file or directory" "-c FILE after the command is the configuration too"
printf 'queue: {lease: oops}\n' >"$WORK/bad-after.yaml"
run_crier config check -c "$WORK/bad-after.yaml"
is "$RC" 78 "config check -c FILE checks FILE"

done_testing
