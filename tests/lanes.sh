#!/usr/bin/env bash
# Runs make steps in parallel lanes: each argument is one lane, a
# space-separated list of make targets run one after another; the lanes run
# side by side.  Each step's output goes to build/logs/<step>.log; the
# terminal gets one line when a step starts and one when it ends (with its
# time), and for a step that failed the log's error lines and its last
# lines.  A lane stops
# at its first failure; the other lanes finish.  Exit status: 0 when every
# step passed, 1 otherwise.
set -uo pipefail

logs=build/logs
mkdir -p "$logs"
started=$SECONDS

say() { printf '[suite %3dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }

run_lane() {
  local step begin
  for step in $1; do
    begin=$SECONDS
    say "$step: started (log: $logs/$step.log)"
    if make --no-print-directory "$step" >"$logs/$step.log" 2>&1; then
      say "$step: passed in $((SECONDS - begin)) s"
    else
      say "$step: FAILED after $((SECONDS - begin)) s; error lines, then the last lines of $logs/$step.log:"
      grep -E 'fatal:|FAILED!|ERROR|Error|failed=[1-9]|AssertionError|^E  ' "$logs/$step.log" | tail -n 40 | sed "s/^/    $step! /"
      tail -n 30 "$logs/$step.log" | sed "s/^/    $step| /"
      return 1
    fi
  done
}

pids=()
for lane in "$@"; do
  run_lane "$lane" &
  pids+=("$!")
done

failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if ((failed)); then say "FAILED (logs in $logs/)"; else say "all passed"; fi
exit "$failed"
