#!/bin/bash
# install.sh - `meson install` into a scratch root: the binary, man pages that match
# --help, bash completion, the configuration (never overwriting a local edit), templates
# and deadline table, the systemd units (systemd-analyze verify, and the exposure score of
# systemd-analyze security, printed for docs/operations.md), tmpfiles.d and sysusers.d.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

: "${CRIER_BUILD_ROOT:?CRIER_BUILD_ROOT must name the build directory (meson test sets it)}"
ROOT="$WORK/root"
install_into() { meson install -C "$CRIER_BUILD_ROOT" --no-rebuild --destdir "$ROOT" >"$WORK/install.out" 2>&1; }
install_into
ok "meson install --destdir succeeds" test $? -eq 0 || cat "$WORK/install.out"

# where things went: PREFIX from the installed binary
bin=$(find "$ROOT" -path '*/bin/crier' -type f | head -1)
ok "the binary is installed" test -x "$bin"
PREFIX=${bin%/bin/crier}
PREFIX=${PREFIX#"$ROOT"}
echo "# prefix $PREFIX"
etc=$(meson introspect --buildoptions "$CRIER_BUILD_ROOT" | python3 -c 'import json,sys,os; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; print(os.path.join(o["prefix"], o["sysconfdir"]))')
for f in share/crier/templates/default/letter.md share/crier/jurisdictions.yaml share/crier/crier.yaml \
         share/crier/fonts/CrierSans.ttf share/crier/fonts/CrierSans-Bold.ttf \
         share/bash-completion/completions/crier lib/tmpfiles.d/crier.conf lib/sysusers.d/crier.conf \
         lib/systemd/system/crier.service lib/systemd/system/crier-hold-check.service \
         lib/systemd/system/crier-hold-check.timer lib/systemd/system/crier-serve.service; do
  ok "$f is installed" test -f "$ROOT$PREFIX/$f"
done

# --- the configuration: installed once 0640, never overwritten ----------------------------------
config="$ROOT$etc/crier/crier.yaml"
is "$(stat -c %a "$config" 2>&1)" 640 "$etc/crier/crier.yaml is installed, 0640"
run_crier config check "$config"
is "$RC" 0 "the installed configuration passes config check"
like "$OUT" "ok$" "and enables no channel (the null channel is commented out)"
echo "# a local edit" >>"$config"
install_into
is "$(tail -1 "$config")" "# a local edit" "a second meson install keeps the local edit"

# --- man pages: one per command group, crier(1), crier.yaml(5); they say what --help says -----
man_dir="$ROOT$PREFIX/share/man"
groups=$("$CRIER" --help | sed -n 's/^  crier \([a-z]*\).*/\1/p' | sort -u)
for page in crier.1 crier.yaml.5 $(for g in $groups; do echo "crier-$g.1"; done); do
  file="$man_dir/man${page##*.}/$page"
  ok "man page $page is installed" test -f "$file"
  ok "man page $page renders without warnings" bash -c "MANWIDTH=80 man --warnings -l '$file' 2>&1 >/dev/null | { ! grep .; }"
done
# each command's --help, verbatim in the page source of its group (render.py pastes it in at
# build time: this fails when the pages were not rebuilt, or render.py lost a command)
drift=0
while read -r group name; do
  [[ $name =~ ^[a-z-]+$ ]] || name=""
  scd="$CRIER_BUILD_ROOT/man/crier-$group.1.scd"
  # shellcheck disable=SC2086
  if ! python3 -c 'import sys; sys.exit(sys.argv[1] not in open(sys.argv[2]).read())' \
      "$("$CRIER" $group $name --help)" "$scd"; then
    echo "#   crier $group $name --help is not in $scd"
    drift=$((drift + 1))
  fi
done < <("$CRIER" --help | sed -n 's/^  crier \([a-z]*\) *\([^ ]*\).*/\1 \2/p')
is "$drift" 0 "every command's --help is in its group's man page, verbatim"
like "$(MANWIDTH=100 man -l "$man_dir/man1/crier-campaign.1" 2>/dev/null)" "campaign reroute NAME --from CHANNEL --to CHANNEL --reason TEXT" \
  "crier-campaign(1) documents campaign reroute"
like "$(MANWIDTH=100 man -l "$man_dir/man5/crier.yaml.5" 2>/dev/null)" "route_grace: 10s" "crier.yaml(5) lists every key"

# --- bash completion -------------------------------------------------------------------------
if [ -f /usr/share/bash-completion/bash_completion ]; then
  complete_words() { # WORDS... - what completing the last word offers
    bash -c 'source /usr/share/bash-completion/bash_completion
      source "$1"; shift
      COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
      _crier; printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT$PREFIX/share/bash-completion/completions/crier" "$@" | sort | tr '\n' ' '
  }
  is "$(complete_words "$CRIER" cam)" "campaign " "completion: a command group"
  is "$(complete_words "$CRIER" campaign re)" "reroute resume " "completion: a command in its group"
  is "$(complete_words "$CRIER" campaign reroute --r)" "--reason " "completion: a command's option, from its --help"
  is "$(complete_words "$CRIER" campaign reroute x --from e)" "email " "completion: a channel"
else
  echo "# bash-completion is not installed: completion not exercised"
fi

# --- systemd units ---------------------------------------------------------------------------
units="$ROOT$PREFIX/lib/systemd/system"
like "$(cat "$units/crier.service")" "ExecStart=$PREFIX/bin/crier run" "crier.service runs the installed binary"
like "$(cat "$units/crier.service")" "Type=notify" "crier.service is Type=notify"
like "$(cat "$ROOT$PREFIX/lib/tmpfiles.d/crier.conf")" "^d /var/spool/crier 0750 crier crier" "tmpfiles.d makes the spool 0750 crier:crier"
if command -v systemd-analyze >/dev/null; then
  # verify: the unit as installed, with its binary where this test can run it
  mkdir -p "$WORK/units"
  for u in crier.service crier-hold-check.service crier-hold-check.timer crier-serve.service; do
    sed "s|$PREFIX/bin/crier|$bin|g" "$units/$u" >"$WORK/units/$u"
  done
  out=$(systemd-analyze verify --man=no "$WORK/units/crier.service" "$WORK/units/crier-hold-check.timer" \
    "$WORK/units/crier-serve.service" 2>&1)
  is "$out" "" "systemd-analyze verify: no complaint about crier.service, crier-hold-check.timer, crier-serve.service"
  for u in crier.service crier-hold-check.service crier-serve.service; do
    score=$(systemd-analyze security --offline=yes "$WORK/units/$u" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "# systemd-analyze security $u: exposure $score"
    ok "$u: exposure ${score:-?} is at most 2.0 (OK)" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'
  done
else
  echo "# systemd-analyze is missing: the units are not verified"
fi

done_testing
