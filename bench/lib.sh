# lib.sh - what several bench scripts share; sourced (from the top of the tree), not run.

# baseline_dir PROGRAM - $BASELINE as an absolute build directory that holds PROGRAM, or
# nothing when BASELINE is unset; exits with the reason when it does not hold PROGRAM.
baseline_dir() {
  local dir=${BASELINE:-}
  [ -n "$dir" ] || return 0
  case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
  [ -x "$dir/$1" ] || { echo "BASELINE: no $1 in $dir" >&2; exit 1; }
  echo "$dir"
}

# runs_count - $RUNS (default 3), a positive whole number, or exit with the reason.
runs_count() {
  local runs=${RUNS:-3}
  [[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "RUNS: a positive number, not '$runs'" >&2; exit 1; }
  echo "$runs"
}

# mail_yaml SPOOL - the mail channel of the print benchmarks (letters.sh, render.sh): its
# spool, the bench's letterhead and an IMb mailer, as lines under `channels:`; a caller
# adds its own keys (lanes, letters_per_batch) after them.
mail_yaml() {
  cat <<YAML
  mail:
    spool: $1
    return_address: |
      Example Corp Privacy Office
      100 Main Street
      Springfield, IL 62701
    imb: {barcode_id: '00', service_type: '270', mailer_id: '123456'}
YAML
}

# tree_ticks PID - user+system CPU, in clock ticks, of PID, of the children it has waited
# for (cutime, cstime) and of its live children: a PostgreSQL cluster's whole CPU from its
# postmaster, backends that have exited included
tree_ticks() {
  # a process that ends while cat reads is no error (nor, under pipefail, a failure)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pid="$1" '{
      self = $1 == pid
      sub(/^.*\) /, "")                      # the fields after "(comm) ": state is $1
      if (self) t += $12 + $13 + $14 + $15
      else if ($2 == pid) t += $12 + $13
    } END { print t + 0 }'
}

# postmaster_pid - the postmaster of the cluster psql reaches (its checkpointer's parent)
postmaster_pid() {
  local child
  child=$(psql -XAt -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
  awk '/^PPid:/ { print $2 }' "/proc/$child/status"
}
