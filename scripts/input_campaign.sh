#!/usr/bin/env bash
# A long differential campaign on generated inputs: `etran fuzz --sweep` (inputs from a
# seeded random stream, no hypothesis engine: about twice the cases per second) on every
# hook of every example transport, JOBS examples at a time, then the totals.
#
#   scripts/input_campaign.sh [EXAMPLES_PER_HOOK] [SEED] [JOBS]   (default 50000, 20261125, 2)
#
# Each hook gets EXAMPLES_PER_HOOK cases; a mismatch is saved under
# tests/property/regressions/ (replayed by the test suite) and makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50000}"
seed="${2:-20261125}"
jobs="${3:-2}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
start=$(date +%s)
status=0
ls examples/*.py | xargs -P "$jobs" -I{} sh -c \
    '.venv/bin/etran fuzz "$1" --sweep --examples "$2" --seed "$3" --save tests/property/regressions \
        > "$4/$(basename "$1").log" 2>&1' _ {} "$n" "$seed" "$logs" || status=1
end=$(date +%s)
for log in "$logs"/*.log; do
    sed -n "s/^\(.* mismatches, .*\)/$(basename "$log" .py.log) \1/p" "$log"
done
awk '/ mismatches / { cases += $2; bad += $4; hooks += 1 }
     END { printf "total: %d hooks, %d cases, %d mismatches\n", hooks, cases, bad }' \
    <(grep -h " mismatches, " "$logs"/*.log | tr -d ,)
echo "wall time: $((end - start)) s on $jobs processes"
exit "$status"
