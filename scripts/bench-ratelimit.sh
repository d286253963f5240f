#!/usr/bin/env bash
# Benchmarks of the rate-limit projection and the admission API against real Redis.
#
#   scripts/bench-ratelimit.sh                 all of it
#   RATE=5000 SECONDS_=10 scripts/bench-ratelimit.sh
#
# 1. events/s applied into Redis (BenchmarkApply: one Lua load + one Lua apply per batch) and the
#    pure core alone (BenchmarkReduce);
# 2. the state read of one admission decision, closed loop (BenchmarkStoreAdmission);
# 3. admission API latency on loopback under a fixed request rate (open-loop generator, latency
#    measured from each request's due time), exact and with shared scope counters (250 ms).
# The machine's load is printed before and after: numbers from a shared machine are only
# comparable at similar load.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RATE=${RATE:-5000}
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

for shared in 0 250; do
	log "== admission API at ${RATE}/s for ${SECONDS_}s, shared scope state ${shared} ms"
	(cd services && ADMISSION_LOAD_RATE=$RATE ADMISSION_LOAD_SECONDS=$SECONDS_ ADMISSION_SHARED_MS=$shared \
		go test -run '^TestAdmissionLoad$' -count 1 -v ./admission/ 2>&1) | grep -E '^(ADMISSION_LOAD|--- FAIL)' || true
	log "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
