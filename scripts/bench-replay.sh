#!/usr/bin/env bash
# End-to-end replay benchmark (services/replay BenchmarkReplayKafka): writes loadgen traffic to a
# fresh topic of PARTITIONS partitions, then times replay.Run (what `convmeter replay` runs)
# rebuilding billing and rate limits from it into a fresh Redis namespace; also the engines alone
# over the same traffic (BenchmarkReplayEngineOnly, no Kafka, no Redis). Topic and keys are
# deleted afterwards. Two traffic models (services/replay benchModels):
#   dense: EVENTS events of 20 numbers, 4 WABAs, 400k users, 40,000 sessions an hour: 1M span 5 h,
#          so nothing expires or folds past the lateness;
#   month: MONTH_EVENTS events of the loadgen defaults over a month (4 numbers, 80k users, 2,400
#          sessions an hour): 3M span 8.3 days, with expiries, folds and evictions as in a long log.
#
#   scripts/bench-replay.sh [EVENTS]        (default 1000000; MONTH_EVENTS=3000000; PARTITIONS=4, BATCH=50000 as `convmeter replay`)
#
# CONVMETER_BENCH_REPLAY_CPUPROFILE=/tmp/replay.cpu writes a CPU profile of each model's replay
# alone (not the traffic's generation and publication) to /tmp/replay.cpu.<model>, and its
# allocations (/tmp/replay.cpu.<model>.allocs, diffed against .allocs0 taken at its start).
#
# records/s = input records read, run through the engines and applied / wall time of the replay.
# cpu-µs/record splits the cost: this process (decode, engines, projections' Go side), the
# Redis server (INFO cpu) and the AOF rewrites it forked meanwhile (its children's CPU: the
# services' Redis runs with appendonly yes, as docker-compose's does), and the Kafka broker
# serving the fetches (when scripts/services.sh started it). GOGC=400 as `convmeter replay` sets by default (-gc-percent).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh up)"
export CONVMETER_REQUIRE_SERVICES=1
# The broker's pid, when scripts/services.sh started it: the benchmark reports its CPU too.
if [[ -z ${CONVMETER_KAFKA_PID:-} && -r ${CONVMETER_STATE:-/tmp/convmeter-services}/kafka.pid ]]; then
	export CONVMETER_KAFKA_PID=$(cat "${CONVMETER_STATE:-/tmp/convmeter-services}/kafka.pid")
fi
export CONVMETER_BENCH_REPLAY_EVENTS=${1:-1000000}
export CONVMETER_BENCH_REPLAY_MONTH_EVENTS=${MONTH_EVENTS:-3000000}
export CONVMETER_BENCH_REPLAY_PARTITIONS=${PARTITIONS:-4}
export CONVMETER_BENCH_REPLAY_BATCH=${BATCH:-50000}
echo "load before: $(uptime)" >&2
(cd services && GOGC=400 go test -run '^$' -bench 'BenchmarkReplay' -benchtime 1x -timeout 30m ./replay/)
echo "load after: $(uptime)" >&2
