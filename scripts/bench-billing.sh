#!/usr/bin/env bash
# Billing projection benchmarks against real Redis:
#   - BenchmarkPlan:   the pure part (pricing + plan), events/s, no I/O;
#   - BenchmarkApply:  charge events/s applied into Redis in batches of 5000 per partition
#                      (WATCH + one read round trip + one MULTI/EXEC per batch), with the Go and
#                      Redis CPU per event, delivery times in log order (as the aggregator emits
#                      charges) and at random over 20 days (the sorted sets' worst case);
#                      BenchmarkApplyParallel: the same with 2 and 4 writers on disjoint
#                      partitions (a projector with -parallel 2, or 4: the default);
#   - TestQueryLatency: stores LINES ledger lines (default 1,000,000), then p50/p99 of a 100-line
#                      page at random cursors and the latency of settled totals.
# Prints the machine (nproc, load) before and after: numbers mean little without it.
#
#   scripts/bench-billing.sh                 LINES=200000 scripts/bench-billing.sh
#
# Uses CONVMETER_REDIS_URL, else the local services (scripts/services.sh up; left running).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LINES=${LINES:-1000000}
APPLY_BATCHES=${APPLY_BATCHES:-60}

if [[ -z ${CONVMETER_REDIS_URL:-} ]]; then
	eval "$(scripts/services.sh up)"
fi
export CONVMETER_REDIS_URL CONVMETER_REQUIRE_SERVICES=1

machine() { printf '[bench] %s: nproc=%s load=%s\n' "$1" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

machine before
cd projections
go test -run '^$' -bench 'BenchmarkPlan|BenchmarkApply' -benchtime "${APPLY_BATCHES}x" -count 1 ./billing/
go test -run '^TestQueryLatency$' -count 1 -v -timeout 30m ./billing/ -billing.lines="$LINES" | grep -E 'stored|p50|PASS|FAIL|ok'
cd ..
machine after
