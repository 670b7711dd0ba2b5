#!/bin/bash
# demo.sh - crier's main job end to end on a fresh Debian 12 machine: installs what is
# missing, builds, starts a throwaway PostgreSQL (pg_virtualenv), and runs the sample
# campaign in config/sample/: migrate, create, load (with rejects), start, run until idle,
# status, and the dispatch log of one person.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
.ci/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

export CRIER=$top/build/crier CRIER_CONFIG=$top/config/sample/crier.yaml SAMPLE=$top/config/sample
pg_virtualenv -t bash -euo pipefail -c '
  say() { printf "\n\$ %s\n" "$*"; "$@"; }
  work=$(mktemp -d)
  say "$CRIER" db migrate
  say "$CRIER" campaign create acme-2026-11 --incident INC-4711 --policy email,fax,mail,null \
      --meta "$SAMPLE/incident.yaml"
  say "$CRIER" campaign load acme-2026-11 --csv "$SAMPLE/affected.csv" --reject-file "$work/rejects.csv"
  printf "\n\$ cat rejects.csv\n"; cat "$work/rejects.csv"
  say "$CRIER" campaign start acme-2026-11
  say "$CRIER" run --until-idle
  say "$CRIER" status acme-2026-11
  say "$CRIER" campaign list
  printf "\n\$ psql: the dispatch log of S003 (fax only, no fax channel yet)\n"
  psql -X -c "SELECT at::time(0), channel, from_state, to_state, to_channel, actor, coalesce(reason, detail) AS why
              FROM crier.dispatch_log WHERE recipient_ref = '"'"'S003'"'"' ORDER BY id"
  state=$("$CRIER" status acme-2026-11 --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")
  [ "$state" = completed ] || { echo "demo: campaign is $state, expected completed"; exit 1; }
  echo "demo: campaign acme-2026-11 completed"
'
