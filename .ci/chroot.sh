#!/bin/bash
# chroot.sh - install the Debian package into a fresh Debian 12 chroot and use it there as
# an administrator would: apt resolves its dependencies from the Debian mirror, then
# `crier --version`, `man crier`, `crier config check` (as root and as the crier user) run,
# the crier user, the spool (0750 crier:crier) and the configuration (0640 root:crier)
# exist, `systemd-analyze verify` accepts the units, and a reinstall keeps a local edit of
# /etc/crier/crier.yaml. Prints TAP; exits non-zero when a check fails.
#
# The mirror is the one this machine's apt uses for bookworm (/etc/apt/sources.list and
# sources.list.d, one-line or deb822), read here at run time so that no host name is
# written into the repository; CRIER_DEBIAN_MIRROR overrides it. Runs as root (debootstrap
# and chroot need it). Nothing is cached: each run bootstraps a new tree.
#
# usage: .ci/chroot.sh prepare DIR       debootstrap bookworm into DIR (network bound: CI
#                                        runs it beside the package build)
#        .ci/chroot.sh check DIR DEB     install DEB into DIR and check it; removes DIR
#        .ci/chroot.sh DEB               both, in a scratch directory
set -euo pipefail

SUITE=bookworm

# sources - "URI SUITE" for each Debian apt source of $SUITE and its -updates and -security
# suites on this machine, the main suite first: debootstrap uses the first, the chroot's apt
# all of them (the package was built against this machine's libraries, which may come from
# the updates). CRIER_DEBIAN_MIRROR overrides them with one URI for $SUITE.
sources() {
  if [ -n "${CRIER_DEBIAN_MIRROR:-}" ]; then
    echo "$CRIER_DEBIAN_MIRROR $SUITE"
    return
  fi
  python3 - "$SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'PY'
import sys, os, re
suite, found = sys.argv[1], []
def add(uris, suites):
    for s in suites:
        if s == suite or s.startswith(suite + "-"):
            found.extend((u, s) for u in uris)
for path in sys.argv[2:]:
    if not os.path.isfile(path):
        continue
    text = open(path).read()
    if path.endswith(".sources"):  # deb822: paragraphs of Field: value
        for para in re.split(r"\n\s*\n", text):
            fields = {}
            for line in para.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                add(fields.get("uris", []), fields.get("suites", []))
    else:  # one-line: deb [options] URI SUITE COMPONENTS...
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                add([words[1]], [words[2]])
found.sort(key=lambda f: f[1] != suite)
if not found or found[0][1] != suite:
    sys.exit("chroot.sh: no apt source for %s in /etc/apt (set CRIER_DEBIAN_MIRROR)" % suite)
for uri, s in found:
    print(uri, s)
PY
}

prepare() { # DIR
  local url
  url=$(sources | awk 'NR == 1 { print $1 }')
  echo "# debootstrap $SUITE (minbase, with man-db and systemd) from the mirror in /etc/apt"
  # systemd: systemd-analyze and systemd-tmpfiles; man-db: man
  debootstrap --variant=minbase --include=man-db,systemd "$SUITE" "$1" "$url" >"$1.log" 2>&1 ||
    { tail -20 "$1.log"; return 1; }
}

n=0
failed=0
ok() { # DESCRIPTION COMMAND... - a TAP line: ok when COMMAND succeeds
  local what=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $what"
  else
    echo "not ok $n - $what"
    failed=$((failed + 1))
    return 1
  fi
}

in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

check() { # DIR DEB
  ROOT=$1
  local deb=$2 version out rc
  version=$(dpkg-deb -f "$deb" Version) || return 1
  set +e # every check runs and reports; the count decides
  # no daemon starts inside the chroot (crier's units are not started anyway)
  sources | awk '{ print "deb", $1, $2, "main" }' >"$ROOT/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  cp "$deb" "$ROOT/tmp/"
  # as on a running system: systemd-tmpfiles (the postinst's spool) and systemd-analyze need
  # /proc; unmounted before the tree is removed (cleanup)
  mount -t proc proc "$ROOT/proc" || return 1
  local log="$ROOT.install.log"
  in_root apt-get update -qq >"$log" 2>&1 &&
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "/tmp/$(basename "$deb")" >>"$log" 2>&1
  rc=$?
  ok "apt installs $(basename "$deb") and its dependencies into a fresh $SUITE" test "$rc" -eq 0 ||
    tail -30 "$log"
  echo "# $(grep -c '^Setting up' "$log") packages set up"

  out=$(in_root crier --version 2>&1)
  ok "crier --version prints $version (it printed: $out)" grep -qF "$version" <<<"$out"
  out=$(in_root env MANWIDTH=80 man crier 2>&1)
  ok "man crier renders crier(1)" grep -q 'crier - ' <<<"$out"
  out=$(in_root env MANWIDTH=80 man crier.yaml 2>&1)
  ok "man 5 crier.yaml renders" grep -q 'route_grace' <<<"$out"
  ok "the crier system user exists" test -n "$(in_root getent passwd crier)"
  out=$(in_root stat -c '%a %U:%G' /var/spool/crier /etc/crier/crier.yaml 2>&1 | tr '\n' ' ')
  ok "spool 0750 crier:crier, configuration 0640 root:crier ($out)" \
    test "$out" = "750 crier:crier 640 root:crier " || grep -i 'tmpfiles\|crier' "$log" | tail -10
  out=$(in_root crier config check 2>&1)
  rc=$?
  ok "crier config check passes the shipped /etc/crier/crier.yaml ($out)" test "$rc" -eq 0
  out=$(chroot --userspec=crier:crier "$ROOT" env -i PATH=/usr/bin:/bin crier config check /etc/crier/crier.yaml 2>&1)
  rc=$?
  ok "and as the crier user, who reads it through its group" test "$rc" -eq 0 || echo "# $out"
  out=$(in_root systemd-analyze verify --man=no /lib/systemd/system/crier.service \
    /lib/systemd/system/crier-hold-check.service /lib/systemd/system/crier-hold-check.timer 2>&1)
  ok "systemd-analyze verify: no complaint about the installed units" test -z "$out" ||
    printf '#   %s\n' "$out"
  echo "# a local edit" >>"$ROOT/etc/crier/crier.yaml"
  in_root dpkg -i "/tmp/$(basename "$deb")" >>"$log" 2>&1
  ok "a reinstall keeps the local edit of /etc/crier/crier.yaml (a conffile)" \
    test "$(tail -1 "$ROOT/etc/crier/crier.yaml")" = "# a local edit"
  echo "1..$n"
  [ "$failed" -eq 0 ]
}

# cleanup DIR... - remove the tree, never through a mount still in it
cleanup() {
  local root=${ROOT:-$1}
  if mountpoint -q "$root/proc" && ! umount "$root/proc"; then
    echo "chroot.sh: $root/proc is still mounted: $* not removed" >&2
    return 1
  fi
  rm -rf --one-file-system "$@"
}

[ "$(id -u)" -eq 0 ] || { echo "chroot.sh: run as root (debootstrap, chroot)" >&2; exit 77; }
case "${1:-}" in
  prepare) prepare "$2" ;;
  check)
    dir=$2
    trap 'cleanup "$dir" "$dir.log" "$dir.install.log"' EXIT
    check "$2" "$3"
    ;;
  *.deb)
    dir=$(mktemp -d /tmp/crier-chroot.XXXXXX)
    trap 'cleanup "$dir"' EXIT
    prepare "$dir/root"
    check "$dir/root" "$1"
    ;;
  *) echo "usage: $0 prepare DIR | check DIR DEB | DEB" >&2; exit 64 ;;
esac
