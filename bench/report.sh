#!/bin/bash
# report.sh [N...] - `crier audit report` on a campaign of N notices sent by the null channel,
# with a region hold placed and lifted: wall time and peak RSS of the text, JSON and HTML
# reports. Flat memory means the peak RSS does not grow with N (issue 7).
# HOLD=0 leaves the hold out: with 1,000,000 notices a campaign that ever had a hold claims
# slowly (about 4 s per claim of 500 under load, measured 2026-11-29: a queue.c matter, noted
# for the lead), so the sending takes an hour instead of a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)
build=${BUILD:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
[ -x "$build/crier" ] || { echo "build crier first: meson setup $build && ninja -C $build"; exit 1; }
export CRIER=$build/crier META=$PWD/tests/data/incident.yaml
work=$(mktemp -d /tmp/crier-bench-report.XXXXXX)
trap 'rm -rf "$work"' EXIT
for n in "${sizes[@]}"; do python3 bench/gen_list.py "$n" >"$work/list-$n.csv"; done

HOLD=${HOLD:-1} pg_virtualenv -t -o 'shared_buffers=512MB' -o 'max_wal_size=4GB' \
  bash -s "$work" "${sizes[@]}" <<'INNER'
set -euo pipefail
work=$1; shift
cd "$work"
cat >crier.yaml <<YAML
queue: {idle_poll: 20}
log: {level: warning}
channels:
  null: {lanes: 2, batch_size: 500}
YAML
for n in "$@"; do
  export PGDATABASE=report_$n
  createdb "$PGDATABASE"
  "$CRIER" db migrate >/dev/null
  "$CRIER" campaign create bench --incident BENCH --policy null --meta "$META" >/dev/null
  "$CRIER" campaign load bench --csv "list-$n.csv" >/dev/null
  [ "${HOLD:-1}" = 0 ] || "$CRIER" hold place bench --region TX --authority FBI --official "SA Roe" --case K-1 \
    --form written --reason bench >/dev/null
  "$CRIER" campaign start bench >/dev/null
  [ "${HOLD:-1}" = 0 ] || ( sleep 2; "$CRIER" hold lift 1 --evidence bench >/dev/null ) &
  /usr/bin/time -f '%e' -o run.time "$CRIER" run --until-idle 2>run.err
  echo "n=$n sent in $(cat run.time) s"
  wait
  psql -XAq -c "VACUUM ANALYZE"
  for kind in text json html; do
    case $kind in
      text) args=() ;;
      json) args=(--json) ;;
      html) args=(--html "$work/report-$n.html") ;;
    esac
    /usr/bin/time -f '%e %M' -o time.out "$CRIER" audit report bench --discovered 2026-10-01 "${args[@]}" >out.$kind
    read -r elapsed kb <time.out
    echo "n=$n $kind: ${elapsed} s, peak RSS $((kb / 1024)) MB"
  done
  unset PGDATABASE
  dropdb "report_$n"
done
INNER
