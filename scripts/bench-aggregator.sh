#!/usr/bin/env bash
# End-to-end aggregator benchmark on the real broker (not a timed test; CI does not run it).
#
#   scripts/bench-aggregator.sh [records] [partitions] [pairs]     (ROUNDS=5 measured rounds)
#
# Prints, with the machine load before and after:
#   - BenchmarkEndToEnd: in each round, a bare kafka-go group reader draining the generated input
#     topic (FetchBatch + Commit) and then the aggregator over the same topic (decode, window
#     engine, encode, acknowledged writes into fresh output topics, Redis snapshots, commits)
#     with the default LZ4 output records (CODECS=lz4,snappy,none adds passes with other
#     codecs, which disturb the passes after them through the kernel's writeback), each pass
#     from group join to the commit of the last offset: rates, CPU of the process and of the
#     broker, cores the machine kept busy, and the ratios (target: the aggregator keeps at least half the rate). One warm-up round,
#     then ROUNDS measured ones; the reported figures are the medians;
#   - BenchmarkProcessor: the CPU ceiling of the aggregator's pure step (decode, engine, encode
#     as records) on one goroutine, without Kafka, over 2 h of traffic (short) and over 10 days
#     (long: expiries, folds past the lateness, evictions);
#   - BenchmarkRestore: snapshot size per pair and the time to snapshot, save to Redis, load and
#     restore an engine with [pairs] live pairs, plus the decode+engine rate that bounds the
#     replay of the log tail after a snapshot;
#   - BenchmarkKillRestore: the same on real processes: `convmeter aggregator` applies [pairs]
#     live pairs over 4 partitions, is killed with SIGKILL and started again; the time from the
#     new process's start to every partition restored and to the tail after the snapshots
#     replayed, once with -instance (the dead member is removed from the group at once) and
#     once without (the killed member's consumer-group session, 6 s here, is waited out).
# Both run without -race. Kafka and Redis come from scripts/services.sh (started if needed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
records=${1:-500000}
partitions=${2:-4}
pairs=${3:-1000000}

if [[ -z ${CONVMETER_KAFKA_BROKERS:-} || -z ${CONVMETER_REDIS_URL:-} ]]; then
	eval "$(scripts/services.sh up)"
fi
export CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL CONVMETER_REQUIRE_SERVICES=1
# The broker's pid, when scripts/services.sh started it: the benchmark reports its CPU per pass.
if [[ -z ${CONVMETER_KAFKA_PID:-} && -r ${CONVMETER_STATE:-/tmp/convmeter-services}/kafka.pid ]]; then
	export CONVMETER_KAFKA_PID=$(cat "${CONVMETER_STATE:-/tmp/convmeter-services}/kafka.pid")
fi

echo "== $(date -u +%FT%TZ) $(nproc) cores; load before: $(uptime | sed 's/.*load average: //')"
echo "== go $(go version | awk '{print $3}'); records=$records partitions=$partitions pairs=$pairs"
cd services
go test -run '^$' -bench 'BenchmarkEndToEnd' -benchtime 1x -timeout 30m -v ./aggregator/ \
	-args -bench.records="$records" -bench.partitions="$partitions" -bench.rounds="${ROUNDS:-5}" -bench.codecs="${CODECS:-lz4}" | grep -v '^time='
echo "== load between: $(uptime | sed 's/.*load average: //')"
go test -run '^$' -bench 'BenchmarkProcessor' -benchtime 3x -timeout 30m ./aggregator/ | grep -E '^Benchmark'
echo "== load between: $(uptime | sed 's/.*load average: //')"
go test -run '^$' -bench 'BenchmarkRestore' -benchtime 1x -benchmem -timeout 30m -v ./aggregator/ \
	-args -bench.pairs="$pairs" | grep -v '^time='
echo "== load between: $(uptime | sed 's/.*load average: //')"
go test -run '^$' -bench 'BenchmarkKillRestore' -benchtime 1x -timeout 30m -v ./aggregator/ \
	-args -bench.pairs="$pairs" | grep -v '^time='
echo "== load after: $(uptime | sed 's/.*load average: //')"
