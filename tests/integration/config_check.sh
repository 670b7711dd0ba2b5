#!/bin/bash
# config_check.sh - `crier config check`: a valid file passes, every problem is reported as
# FILE:LINE:COL: message with exit 78 (EX_CONFIG), where crier looks for its config, and the
# shipped example config is valid.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

unset CRIER_CONFIG

# --- a good file: exit 0, "FILE: ok" and the enabled channels ------------------------------
cat >good.yaml <<'YAML'
queue:
  lease: 5m
  idle_poll: 200
channels:
  null: {lanes: 3}
YAML
run_crier -c good.yaml config check
is "$RC" 0 "a valid config passes"
is "$(head -2 <<<"$OUT")" "good.yaml: ok
  channel null: 3 lanes" "config check says ok and lists the enabled channels"
RULES=$(cd "$TESTS_DIR/.." && pwd)/config/jurisdictions.yaml
is "$(grep '^  rules table' <<<"$OUT")" "  rules table $RULES: 58 entries, 25 verified, 5 from a secondary source only, 20 without any source" \
  "config check loads the shipped rules table and says how much of it is verified"
like "$(tail -1 <<<"$OUT")" "^  fonts: Crier Sans, from /" "and says where crier's fonts are"
is "$ERR" "" "a valid config prints nothing on stderr"
mkdir -p no-fonts
CRIER_FONTS_DIR=$PWD/no-fonts run_crier -c good.yaml config check
is "$RC:$(tail -1 <<<"$OUT")" "0:  fonts: crier's own are not installed (or not where CRIER_FONTS_DIR says): letters and faxes are drawn in the system's DejaVu Sans (a fax's PDF about twice the size)" \
  "without them, it says what letters and faxes are drawn in instead (not an error)"
run_crier config check good.yaml
is "$RC:$(head -1 <<<"$OUT")" "0:good.yaml: ok" "config check FILE works like -c FILE"

# --- an unknown key: exit 78, FILE:LINE:COL of the key ------------------------------------
printf 'queue:\n  lease: 5m\n  bogus: 1\n' >unknown.yaml
run_crier -c unknown.yaml config check
is "$RC" 78 "an unknown key: 78"
is "$ERR" "unknown.yaml:3:3: unknown key 'bogus' in 'queue'" "the unknown key is reported at 3:3"
is "$OUT" "" "nothing on stdout for an invalid config"
printf 'channels:\n  pigeon: {}\n' >unknown-channel.yaml
run_crier -c unknown-channel.yaml config check
is "$RC" 78 "an unknown channel: 78"
is "$ERR" "unknown-channel.yaml:2:3: unknown key 'pigeon' in 'channels' (expected one of: email, fax, mail, null, test)" \
  "an unknown channel lists the known ones"

# --- a value of the wrong type: exit 78, FILE:LINE:COL of the value ------------------------
printf 'queue:\n  idle_poll: "500"\n' >type.yaml
run_crier -c type.yaml config check
is "$RC" 78 "a quoted number where an integer is expected: 78"
is "$ERR" "type.yaml:2:14: expected an integer for 'queue.idle_poll'" "the wrong type is reported at 2:14"
printf 'channels:\n  test: {lanes: two}\n' >type2.yaml
run_crier -c type2.yaml config check
is "$RC:$ERR" "78:type2.yaml:2:17: expected an integer for 'channels.test.lanes'" \
  "a word where an integer is expected, inside a flow mapping, is reported at 2:17"
printf 'queue:\n  lease: 0\n' >range.yaml
run_crier -c range.yaml config check
is "$RC:$ERR" "78:range.yaml:2:10: value 0 for 'queue.lease' is out of range (at least 1)" \
  "a value out of range is reported"

# --- every problem in one pass -------------------------------------------------------------
printf 'queue:\n  lease: soon\nlog:\n  level: loud\nextra: 1\n' >many.yaml
run_crier -c many.yaml config check
is "$RC" 78 "several problems: 78"
is "$ERR" "many.yaml:2:10: expected an integer for 'queue.lease' (seconds, or a duration like 30s, 5m, 2h, 3d)
many.yaml:4:10: invalid value 'loud' for 'log.level' (expected one of: debug, info, notice, warning, error)
many.yaml:5:1: unknown key 'extra' at the top level" "every problem is reported, each with its position"

# --- bad YAML: exit 78, FILE:LINE:COL where the parser stopped -----------------------------
printf 'queue:\n lease: 5m\n  backoff_min: 1s\n' >syntax.yaml
run_crier -c syntax.yaml config check
is "$RC" 78 "a YAML syntax error: 78"
is "$ERR" "syntax.yaml:3:14: mapping values are not allowed in this context" "the syntax error is reported at 3:14"
printf 'queue: [1, 2\n' >flow.yaml
run_crier -c flow.yaml config check
is "$RC" 78 "an unclosed flow sequence: 78"
like "$ERR" "^flow\.yaml:2:1: did not find expected ',' or '\]' \(while parsing a flow sequence at line 1 column 8\)$" \
  "the unclosed sequence is reported with where it started"

# --- a missing file: exit 78 ---------------------------------------------------------------
run_crier -c missing.yaml config check
is "$RC:$ERR" "78:missing.yaml: cannot open: No such file or directory" "a missing file: 78, named"

# --- commands other than config check refuse to start on a bad config ----------------------
run_crier -c unknown.yaml campaign list
is "$RC:$ERR" "78:unknown.yaml:3:3: unknown key 'bogus' in 'queue'" "campaign list refuses a bad config with 78"
run_crier -c unknown.yaml run --until-idle
is "$RC" 78 "run refuses a bad config with 78"

# --- where crier looks: no file anywhere, CRIER_CONFIG, ./crier.yaml -----------------------
mkdir empty
if [ -e /etc/crier/crier.yaml ]; then
  TAP_COUNT=$((TAP_COUNT + 1))
  echo "ok $TAP_COUNT # SKIP /etc/crier/crier.yaml exists on this machine"
else
  (cd empty && "$CRIER" config check >"$WORK/out" 2>"$WORK/err")
  RC=$?
  is "$RC" 78 "no config file anywhere: 78"
  is "$(cat "$WORK/err")" "crier config check: no configuration file: give -c FILE, set CRIER_CONFIG, or create ./crier.yaml or /etc/crier/crier.yaml" \
    "no config file anywhere is explained"
fi
CRIER_CONFIG=$WORK/good.yaml run_crier config check
is "$RC:$(head -1 <<<"$OUT")" "0:$WORK/good.yaml: ok" "CRIER_CONFIG names the file checked"
CRIER_CONFIG=$WORK/unknown.yaml run_crier config check
is "$RC:$ERR" "78:$WORK/unknown.yaml:3:3: unknown key 'bogus' in 'queue'" "CRIER_CONFIG is honoured for a bad file too"
CRIER_CONFIG=$WORK/unknown.yaml run_crier -c good.yaml config check
is "$RC:$(head -1 <<<"$OUT")" "0:good.yaml: ok" "-c FILE wins over CRIER_CONFIG"
cp good.yaml crier.yaml
run_crier config check
is "$RC:$(head -1 <<<"$OUT")" "0:crier.yaml: ok" "./crier.yaml is found in the working directory"
CRIER_CONFIG=$WORK/unknown.yaml run_crier config check
is "$RC" 78 "CRIER_CONFIG wins over ./crier.yaml"

# --- the rules table (report.deadlines): schema errors as FILE:LINE:COL, exit 78 -------------
# an entry without citation or checked date, a threshold that is not a comparison, a key
# misspelt: each refused, every one reported
cat >rules.yaml <<'YAML'
schema: 2
caveat: test
frameworks: {}
abroad: {}
jurisdictions:
  TL:
    name: Testland
    source: {kind: source-check, text: test}
    verified: false
    individual: {deadline: "30 days", from: discovery}
    regulators:
      - {name: AG, threshold: 500, deadline: unknown, order: before}
    credit_reporting_agencies: {threshold: "more than 1000"}
    substitute_notice: unknown
    law_enforcement_delay: unknown
    content: unknown
    notes: typo
YAML
printf 'report:\n  deadlines: rules.yaml\n' >with-rules.yaml
run_crier -c with-rules.yaml config check
is "$RC" 78 "a bad rules table: 78"
is "$ERR" "rules.yaml:17:5: unknown key 'notes' in entry TL
rules.yaml:7:5: entry TL has no 'citation' (write 'unknown' when the source does not say)
rules.yaml:7:5: entry TL has no 'checked' (write 'unknown' when the source does not say)
rules.yaml:12:31: entry TL regulators[1] threshold must be an explicit comparison: \"N or more\", \"more than N\", \"any number\", \"none\" or \"unknown\" (got '500')" \
  "every problem of the rules table, FILE:LINE:COL"
is "$OUT" "" "nothing on stdout for a bad rules table"
printf 'report:\n  deadlines: missing.yaml\n' >missing-rules.yaml
run_crier -c missing-rules.yaml config check
is "$RC:$ERR" "78:missing.yaml: cannot open the rules table: No such file or directory" \
  "a rules table that cannot be opened: 78"

# --- the shipped example config is valid ---------------------------------------------------
example=$TESTS_DIR/../config/crier.example.yaml
run_crier -c "$example" config check
is "$RC" 0 "config/crier.example.yaml passes"
is "$(head -1 <<<"$OUT")" "$example: ok" "config/crier.example.yaml: ok"
is "$ERR" "" "config/crier.example.yaml: nothing on stderr"

done_testing
