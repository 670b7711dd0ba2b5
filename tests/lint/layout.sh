#!/bin/bash
# layout.sh - the layering docs/architecture.md promises, checked by grep (TAP, no services).
#
# 1. No channel is named outside channels/: the engine asks the ops table (templates,
#    claim, check, probe, send_text, recover, compose, proof, bounces) and never compares a channel's
#    name ("is this email?"). Checked: a string literal, C's or SQL's, that is exactly a channel's name,
#    the CHANNEL_<NAME> id of one channel, or a channel's own functions, in engine/ C code.
#    Configuration (config/) and help text (longer strings) may name them; the few engine
#    literals that spell a channel's name but mean something else (a template variable, a
#    field label, the JSON null) are listed in ALLOWED below, each with why.
# 2. channels/ never includes a header of engine/core, engine/cmd or db.h: the engine hands
#    channels what they need (struct notice_renderer, struct channel_recovery).
# 3. engine/lib includes no header of engine/core or engine/cmd.
# Each check first proves on a planted sample that it can fail.
set -uo pipefail
SRC=${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
count=0
failed=0
ok() { # ok CONDITION-STATUS DESCRIPTION [DIAGNOSTICS]
  count=$((count + 1))
  if [ "$1" -eq 0 ]; then
    echo "ok $count - $2"
  else
    echo "not ok $count - $2"
    [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
    failed=$((failed + 1))
  fi
}

CHANNELS='email|fax|mail|null|test'
# file:text that may spell a channel's name without meaning the channel
ALLOWED=(
  'engine/core/render.c:set_string(vars, "email"'   # template variables {{email}}, {{fax}}
  'engine/core/render.c:set_string(vars, "fax"'
  'engine/cmd/audit.c:text_line(out, "email"'       # audit show's field labels
  'engine/cmd/audit.c:text_line(out, "fax"'
  'engine/cmd/audit.c:"email", s->p.notice.email'   # audit show --json's field names
  'engine/cmd/regulators.c:{"portal", "mail", "email", "fax", "other"}' # how a regulator was filed with
  'engine/core/seal.c:fputs_unlocked("null"'        # JSON null
  'engine/core/import.c:strbuf_add(b, "null"'       # JSON null in a COPY'd JSON column
  'engine/cmd/audit.c:"email", db_value(versions'   # audit show --json's contact versions
  'engine/cmd/cli.c:OPT_WHOLE("email", unreached_key' # audit find --email (a contact, not a channel)
  'engine/cmd/cli.c:OPT_WHOLE("fax", unreached_key'   # audit find --fax
  'engine/cmd/unreached.c:"campaign", "ref"'        # the unreached list's column names
  'engine/cmd/unreached.c:"email",        "fax"'    # audit find --json's field names
  'engine/web/person.c:{"email", "Email address"'   # the console's find by= (audit find --email)
  'engine/web/person.c:{"fax", "Fax number'         # find by=fax (a contact, not a channel)
  'engine/core/substitute_write.c:.policy = "email"' # substitute notice is email by statute
)

# names_in DIR - the lines of C under DIR that name a channel, less the allowed ones
names_in() {
  grep -rnE --include='*.c' --include='*.h' \
    "[\"']($CHANNELS)[\"']|CHANNEL_(EMAIL|FAX|MAIL|NULL|TEST)\\b|\\b(email|fax|print)_(compose|probe|letter_digest|spool_check|send_text)\\b" \
    "$1" | sed "s|^$SRC/||" | while IFS= read -r hit; do
      file=${hit%%:*}
      allowed=0
      for a in "${ALLOWED[@]}"; do
        [ "${a%%:*}" = "$file" ] && [[ $hit == *"${a#*:}"* ]] && allowed=1
      done
      # a comment that mentions a channel is not the engine comparing it
      line=${hit#*:*:}
      [[ $line =~ ^[[:space:]]*(/\*|\*) ]] && allowed=1
      [ $allowed -eq 0 ] && echo "$hit"
    done
}

# forbidden_includes DIR HEADERS... - #include "crier/H.h" lines under DIR for those H
forbidden_includes() {
  local dir=$1
  shift
  local alt
  alt=$(printf '%s|' "$@")
  grep -rnE --include='*.c' --include='*.h' "#include \"crier/(${alt%|})\\.h\"" "$dir" |
    sed "s|^$SRC/||"
}

headers_of() { for f in "$@"; do [ -e "$f" ] && basename "$f" .c; done; }
core_cmd=$(headers_of "$SRC"/engine/core/*.c "$SRC"/engine/cmd/*.c)

# the checks can fail: a planted sample of each mistake is found
plant=$(mktemp -d /tmp/crier-layout.XXXXXX)
trap 'rm -rf "$plant"' EXIT
mkdir -p "$plant/engine/core" "$plant/channels"
printf 'if (strcmp(channel, "email") == 0)\n" WHEN '"'"'fax'"'"' THEN r.fax"\n' >"$plant/engine/core/x.c"
printf '#include "crier/render.h"\n#include "crier/db.h"\n' >"$plant/channels/y.c"
planted=$(SRC=$plant names_in "$plant/engine" | wc -l)
ok $((planted == 2 ? 0 : 1)) "the channel-name check finds a planted comparison in C and in SQL"
planted=$(forbidden_includes "$plant/channels" db $core_cmd | wc -l)
ok $((planted == 2 ? 0 : 1)) "the include check finds planted core and db includes"

hits=$(names_in "$SRC/engine")
ok $([ -z "$hits" ] && echo 0 || echo 1) "no channel is named in engine/ (ask the ops table)" "$hits"
hits=$(forbidden_includes "$SRC/channels" db $core_cmd)
ok $([ -z "$hits" ] && echo 0 || echo 1) "channels/ includes no engine/core, engine/cmd or db header" "$hits"
hits=$(forbidden_includes "$SRC/engine/lib" $core_cmd)
ok $([ -z "$hits" ] && echo 0 || echo 1) "engine/lib includes no engine/core or engine/cmd header" "$hits"

echo "1..$count"
[ $failed -eq 0 ]
