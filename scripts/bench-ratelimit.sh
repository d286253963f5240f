#!/usr/bin/env bash
# Benchmarks of the rate-limit projection and the admission API against real Redis.
#
#   scripts/bench-ratelimit.sh                 all of it
#   RATES="1000 2000 5000" SECONDS_=10 scripts/bench-ratelimit.sh
#
# 1. events/s applied into Redis (BenchmarkApply: one Lua load + one Lua apply per batch) and the
#    pure core alone (BenchmarkReduce);
# 2. the state read of one admission decision, closed loop (BenchmarkStoreAdmission);
# 3. admission API latency on loopback under fixed request rates (open-loop generator in the same
#    process, latency measured from each request's due time; 503 = shed beyond 512 in flight),
#    exact at every rate, then with shared scope counters (250 ms) at the highest rate; each line
#    also gives the CPU per request of this process and of the Redis server.
# The machine's load is printed before and after: numbers from a shared machine are only
# comparable at similar load.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RATES=${RATES:-1000 2000 5000}
SECONDS_=${SECONDS_:-10}
BATCHES=${BATCHES:-30}

log() { printf '[bench-ratelimit] %s\n' "$*" >&2; }

if [[ -z ${CONVMETER_REDIS_URL:-} ]]; then
	eval "$(scripts/services.sh up)"
fi
export CONVMETER_REDIS_URL CONVMETER_REQUIRE_SERVICES=1

log "$(go version); $(nproc) cores; CONVMETER_REDIS_URL=$CONVMETER_REDIS_URL"
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

log "== apply into Redis, pure reduce"
(cd projections && go test -run '^$' -bench 'BenchmarkApply|BenchmarkReduce' -benchtime "${BATCHES}x" -count 1 ./ratelimit/) |
	grep -E '^(Benchmark|ok|FAIL)'
log "load: $(cut -d' ' -f1-3 /proc/loadavg)"

log "== admission state read (closed loop)"
(cd services && go test -run '^$' -bench BenchmarkStoreAdmission -benchtime 3000x -count 1 ./admission/) |
	grep -E '^(Benchmark|ok|FAIL)'
log "load: $(cut -d' ' -f1-3 /proc/loadavg)"

run_load() { # rate shared_ms
	log "== admission API at $1/s for ${SECONDS_}s, shared scope state $2 ms"
	(cd services && ADMISSION_LOAD_RATE=$1 ADMISSION_LOAD_SECONDS=$SECONDS_ ADMISSION_SHARED_MS=$2 \
		go test -run '^TestAdmissionLoad$' -count 1 -v ./admission/ 2>&1) | grep -E '^(ADMISSION_LOAD|--- FAIL)' || true
	log "load: $(cut -d' ' -f1-3 /proc/loadavg)"
}
top=
for rate in $RATES; do
	run_load "$rate" 0
	top=$rate
done
run_load "$top" 250
