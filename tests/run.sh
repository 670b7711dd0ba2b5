#!/bin/bash
# run.sh - the whole test suite, as CI runs it, on a fresh Debian 12 machine:
#   installs what is missing, checks formatting, builds twice with warnings as errors
#   (optimized; ASan+UBSan), and runs every unit and integration test of both builds
#   against a throwaway PostgreSQL cluster (pg_virtualenv). With CRIER_DEB=1 (.ci/run sets
#   it) also the Debian package: built, linted and installed into a fresh Debian 12 chroot.
# Prints "N passed, N failed" last; exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

.ci/install-deps.sh

echo "== format (clang-format --dry-run over every C file)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find engine channels config include tests -name '*.c' -o -name '*.h')
clang-format --dry-run -Werror "${sources[@]}"

echo "== build: release (werror)"
[ -d build-ci ] || meson setup build-ci --werror -Dbuildtype=debugoptimized >/dev/null
ninja -C build-ci >/dev/null

echo "== build: ASan+UBSan (werror)"
[ -d build-asan ] || meson setup build-asan --werror -Dbuildtype=debug \
  -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-asan >/dev/null

# the sanitizers' settings are in tests/meson.build, for every test
status=0
echo "== tests against a throwaway PostgreSQL"
# -t: a temporary cluster directory even as root
pg_virtualenv -t bash -c '
  rc=0
  meson test -C build-ci --print-errorlogs --num-processes 2 || rc=1
  meson test -C build-asan --print-errorlogs --num-processes 2 || rc=1
  exit $rc
' || status=1

echo "== fuzz: each libFuzzer target for ${CRIER_FUZZ_SECONDS:-20} s after its regression inputs (clang)"
CRIER_FUZZ_SECONDS=${CRIER_FUZZ_SECONDS:-20} tests/fuzz/run.sh || status=1

if [ -n "${CRIER_DEB:-}" ]; then
  # once, not per build: the package is its own optimized build. debootstrap (network
  # bound) runs beside dpkg-buildpackage (CPU bound); nothing is kept for the next run.
  echo "== Debian package (CRIER_DEB=1): .ci/deb.sh, then .ci/chroot.sh in a fresh Debian 12"
  started=$SECONDS
  debdir=$(mktemp -d /tmp/crier-ci-deb.XXXXXX)
  .ci/chroot.sh prepare "$debdir/root" >"$debdir/prepare.out" 2>&1 &
  prepare=$!
  .ci/deb.sh "$debdir" || status=1
  if wait "$prepare"; then
    .ci/chroot.sh check "$debdir/root" "$debdir"/crier_*.deb || { status=1; echo "== FAILED: chroot install"; }
  else
    cat "$debdir/prepare.out"
    status=1
    echo "== FAILED: debootstrap"
  fi
  rm -rf --one-file-system "$debdir" # never into a /proc a killed check left mounted
  echo "# package build, lintian and chroot install: $((SECONDS - started)) s"
fi

python3 - "$top" <<'PY'
import json, sys, os
# CI keeps only the tail of what this prints, so the failures are repeated here,
# each with the end of its output, just above the count.
passed = failed = skipped = 0
failures = []
for build in ("build-ci", "build-asan"):
    path = os.path.join(sys.argv[1], build, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        continue
    for line in open(path):
        test = json.loads(line)
        result = test["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append((build, test))
for build, test in failures:
    out = (test.get("stdout") or "").splitlines()
    print(f"== FAILED: {build} {test['name']} ({test['result']}, {test.get('duration', 0):.0f} s)")
    err = (test.get("stderr") or "").splitlines()
    for text in [l for l in out if l.startswith("not ok")][:20] + ["..."] + out[-40:] + err[-20:]:
        print("   " + text)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
