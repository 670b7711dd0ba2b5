#!/bin/bash
# deb.sh - build the Debian package from a clean copy of the tracked files and run lintian
# on it: dpkg-buildpackage -us -uc -b (unit tests only: debian/rules). Prints lintian's
# tags last. With DIR, the .deb is copied there (.ci/chroot.sh installs it into a fresh
# Debian 12 chroot). The scratch tree is removed on exit. tests/run.sh runs it when
# CRIER_DEB=1, which .ci/run sets: a second full build, about 100 s on two loaded cores.
# usage: .ci/deb.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=${1:-}
version=$(dpkg-parsechangelog -S Version)
out=$(mktemp -d /tmp/crier-deb.XXXXXX)
trap 'rm -rf "$out"' EXIT
mkdir "$out/crier-$version"
git ls-files | tar -cf - -T - | tar -xf - -C "$out/crier-$version"
(cd "$out/crier-$version" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) ||
  { tail -40 "$out/build.log"; exit 1; }
deb=$(ls "$out"/crier_"$version"_*.deb)
echo "== built $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{ print $1, $6 }'
[ -z "$keep" ] || cp "$deb" "$keep/"
echo "== lintian"
chmod -R a+rX "$out"
lintian -EIL +pedantic "$deb" 2>&1 | grep -v 'not recommended' || true
