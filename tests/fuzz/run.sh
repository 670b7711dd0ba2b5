#!/bin/bash
# run.sh - build the libFuzzer targets with clang and run each for a bounded time.
#   First every input in tests/fuzz/regress/NAME/ (crashes found before, now fixed) is
#   replayed; then each target fuzzes for CRIER_FUZZ_SECONDS (default 20) from its seed
#   corpus tests/fuzz/corpus/NAME/ (the grown corpus is kept in build-fuzz/corpus/, not in
#   the repository), with the format's tokens from tests/fuzz/dict/NAME.dict. Exits
#   non-zero if any target crashes, leaks, hangs or fails to build.
#   CRIER_FUZZ_TARGETS="csv fax" runs only those; CRIER_FUZZ_BUILD=dir changes the build
#   directory (default build-fuzz). docs/fuzzing.md describes the targets.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
build=${CRIER_FUZZ_BUILD:-build-fuzz}
seconds=${CRIER_FUZZ_SECONDS:-20}
targets=(${CRIER_FUZZ_TARGETS:-config csv template letter bounce fax rules})

# the longest input each target is given: enough for a real file of its kind
declare -A max_len=([config]=8192 [csv]=8192 [template]=8192 [letter]=4096 [bounce]=16384
  [fax]=4096 [rules]=16384)

if [ ! -d "$build" ]; then
  CC=clang meson setup "$build" --werror -Dfuzz=true -Dtests=disabled \
    -Dbuildtype=debugoptimized -Db_lundef=false >/dev/null
fi
# ninja says why a build failed on stdout: keep it, and show it when it fails
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >"$build/build.log" 2>&1 || {
  echo "FAIL: the fuzz targets do not build (log: $build/build.log)"
  grep -E 'error|undefined reference' "$build/build.log" | head -20
  exit 1
}

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0

status=0
for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/fuzz_$t
  mapfile -t regress < <(find "tests/fuzz/regress/$t" -type f ! -name README.md 2>/dev/null | sort)
  if [ ${#regress[@]} -gt 0 ]; then
    if "$exe" -runs=1 "${regress[@]}" >"$build/fuzz_$t.regress.log" 2>&1; then
      echo "ok: fuzz_$t replays ${#regress[@]} regression input(s)"
    else
      echo "FAIL: fuzz_$t crashes on a regression input (log: $build/fuzz_$t.regress.log)"
      tail -40 "$build/fuzz_$t.regress.log"
      status=1
    fi
  fi
done

for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/fuzz_$t
  corpus=$build/corpus/$t
  artifacts=$build/crashes/$t
  mkdir -p "$corpus" "$artifacts"
  start=$(date +%s.%N)
  # tests/fuzz/dict/NAME.dict: the tokens of the format (keys, tags, headers, JSON names)
  if "$exe" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    -dict="tests/fuzz/dict/$t.dict" "$corpus" "tests/fuzz/corpus/$t" >"$build/fuzz_$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz_$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$build/fuzz_$t.log" | tail -1)
    printf 'ok: fuzz_%s %ss, %s runs, %s\n' "$t" \
      "$(echo "$(date +%s.%N) - $start" | bc | cut -d. -f1)" "${runs:-?}" "${cov:-cov: ?}"
  else
    echo "FAIL: fuzz_$t crashed; input in $artifacts/ (log: $build/fuzz_$t.log)"
    grep -A30 -m1 -E '^==[0-9]+==ERROR|runtime error|deadly signal|timeout' \
      "$build/fuzz_$t.log" || tail -40 "$build/fuzz_$t.log"
    status=1
  fi
done
exit $status
