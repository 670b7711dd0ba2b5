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
