# shellcheck shell=bash
# peers.sh - the real peers the fault tests send to, and how they are counted (sourced by
# tests/fault/*.sh after tests/integration/lib.sh, which stops them at exit: PEERS).
#
#   Postfix's smtp-sink     every transaction appended to $WORK/sink/dump (-D); one
#                           X-Rcpt-Args line per RCPT, counted per address
#   tests/peers/fax_gateway.py   one JSON line per accepted fax in $WORK/gateway.log,
#                           counted per number
#   the print spool         $WORK/spool: final manifests B<ID>.csv, counted per notice id

SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# peer_tools_or_skip - a clear TAP skip when a peer's program is missing
peer_tools_or_skip() {
  [ -x "$SMTP_SINK" ] || { echo "1..0 # SKIP $SMTP_SINK missing (Debian: postfix)"; exit 0; }
  "$PY" -c 'import http.server' 2>/dev/null || { echo "1..0 # SKIP $PY cannot run the fax gateway"; exit 0; }
}

# start_sink - smtp-sink on a free port; sets SINK_PORT
start_sink() {
  local user=()
  mkdir -p "$WORK/sink"
  # as root smtp-sink runs as nobody, who must reach the dump file
  if [ "$(id -u)" -eq 0 ]; then
    user=(-u nobody)
    chmod 755 "$WORK" && chmod 777 "$WORK/sink"
  fi
  SINK_PORT=$(free_port)
  "$SMTP_SINK" "${user[@]}" -D "$WORK/sink/dump" "127.0.0.1:$SINK_PORT" 256 \
    >"$WORK/sink.out" 2>"$WORK/sink.err" &
  PEERS+=($!)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "Bail out! smtp-sink did not start: $(cat "$WORK/sink.err")"
  exit 1
}

# sink_counts - "ADDRESS COUNT" per recipient address smtp-sink received
sink_counts() {
  [ -f "$WORK/sink/dump" ] || return 0
  sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' "$WORK/sink/dump" | sort | uniq -c | awk '{ print $2, $1 }'
}

# shellcheck disable=SC2120 # the arguments are optional
# start_gateway [ARGS...] - the fax gateway peer logging to $WORK/gateway.log; sets GATEWAY_PORT
start_gateway() {
  start_peer gateway "$PY" "$TESTS_DIR/peers/fax_gateway.py" --secret "$FAX_SECRET" \
    --log "$WORK/gateway.log" --queued-s 0.1 --progress-s 0.1 "$@"
  GATEWAY_PORT=$PORT
}
export FAX_SECRET="fault-secret-$$"

# gateway_counts - "NUMBER COUNT" per fax number the gateway accepted
gateway_counts() {
  [ -f "$WORK/gateway.log" ] || return 0
  "$PY" -c 'import json, sys, collections
c = collections.Counter(json.loads(l)["to"] for l in open(sys.argv[1]))
for k in sorted(c): print(k, c[k])' "$WORK/gateway.log"
}

# manifest_counts - "NOTICE_ID COUNT" per notice in the final (printable) manifests
manifest_counts() {
  local files=("$WORK"/spool/B*.csv)
  [ -e "${files[0]}" ] || return 0
  "$PY" -c 'import csv, sys, collections
c = collections.Counter()
for name in sys.argv[1:]:
    with open(name, newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        column = header.index("notice_id")
        c.update(row[column] for row in rows)
for k in sorted(c): print(k, c[k])' "${files[@]}"
}

# people_csv N FILE [EVERY] - N people: 1 in EVERY (default 10) by fax only, 1 in EVERY by
# postal mail only, the others by email only (every fax number ends in 8, so none is one
# of the gateway's scripted faults: 0000, 0400, 0429, 0500, 0503, 0997, 0999)
people_csv() {
  awk -v n="$1" -v every="${3:-10}" 'BEGIN {
    print "ref,name,email,fax,address1,address2,city,region,postal_code,country"
    for (i = 1; i <= n; i++) {
      if (i % every == every - 2)
        printf "p%d,Person %d,,+1212%07d,,,,,,\n", i, i, i * 10 + 8
      else if (i % every == every - 1)
        printf "p%d,Person %d,,,%d Elm Street,,Springfield,IL,%05d,US\n", i, i, i, 60000 + i % 2000
      else
        printf "p%d,Person %d,p%d@example.com,,,,,,,\n", i, i, i
    }
  }' >"$2"
}

# channels_config LANES_EMAIL LANES_FAX LANES_MAIL [EXTRA] - the three channels, to the peers
channels_config() {
  mkdir -p "$WORK/spool"
  write_config "channels:
  email:
    lanes: $1
    batch_size: 50
    smtp: {host: 127.0.0.1, port: $SINK_PORT, timeout: 10}
    from: \"Example Corp <privacy@example.com>\"
    bounce_domain: bounces.example.com
  fax:
    lanes: $2
    batch_size: 10
    provider: sinch
    base_url: http://127.0.0.1:$GATEWAY_PORT
    project_id: proj-test
    key_id: key-test
    key_secret_env: FAX_SECRET
    from: \"+12125550100\"
    poll_interval: 1s
    timeout: 10s
  mail:
    lanes: $3
    spool: $WORK/spool
    letters_per_batch: 100
    batch_window: 1s
${4:-}"
}
