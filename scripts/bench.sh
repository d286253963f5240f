#!/usr/bin/env bash
# Runs every benchmark of the project and writes one table.
#
#   scripts/bench.sh [output.md]        (default: bench-results.md)
#
# Go benchmarks (testing.B, b.ReportMetric) run with -run '^$' so no tests run alongside; the
# end-to-end scripts scripts/bench-*.sh run against the real Kafka and Redis that
# scripts/services.sh starts (and stops again if this script started them). The machine state
# (cores, load average before and after each step) is recorded beside every figure: compare
# figures of one run as ratios, not across runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-bench-results.md}
PAIRS=${CONVMETER_BENCH_PAIRS:-1000000}
SNAPSHOT_PAIRS=${CONVMETER_BENCH_SNAPSHOT_PAIRS:-10000000}

log() { printf '[bench] %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

if [[ -z ${CONVMETER_KAFKA_BROKERS:-} || -z ${CONVMETER_REDIS_URL:-} ]]; then
	if ! scripts/services.sh status >/dev/null 2>&1; then
		trap 'scripts/services.sh down || true' EXIT
	fi
	eval "$(scripts/services.sh up)"
fi
export CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL

tmp=$(mktemp -d)
rows=()
logs=()

# gobench MODULE PKG REGEX [extra args...]: one table row per benchmark metric line.
gobench() {
	local mod=$1 pkg=$2 re=$3
	shift 3
	local before after
	before=$(load)
	log "go bench $mod/$pkg $re"
	if ! (cd "$mod" && go test -run '^$' -bench "$re" "$@" "$pkg") >"$tmp/out" 2>&1; then
		rows+=("| $mod/${pkg#./} $re | FAILED: $(tail -n 3 "$tmp/out" | tr '\n|' ' /') | | $before |")
		return 0
	fi
	after=$(load)
	while read -r line; do
		# BenchmarkX-2   N   123 ns/op   456 events/s ...
		local name rest
		name=$(awk '{print $1}' <<<"$line")
		rest=$(cut -f3- <<<"$(tr -s ' \t' '\t' <<<"$line")" | tr '\t' ' ')
		rows+=("| $mod/${pkg#./} $name | $rest | | $before → $after |")
	done < <(grep -E '^Benchmark' "$tmp/out")
}

# Lines of an end-to-end script's output that carry its figures: benchmark results, the
# aggregator's per-round and median ratios, the replay's and the admission load's summaries.
summary='^Benchmark[^ ]*[[:space:]]+[0-9]|ratio with|round [0-9]+: aggregator|ADMISSION_LOAD|replay: [0-9]+ records|restart before tail replay|live pairs; every partition restored'

# script NAME: runs scripts/bench-NAME.sh, keeps one row per summary line of its output (its last
# lines when none matches) and its whole output for the raw section.
script() {
	local name=$1 f=scripts/bench-$1.sh before after line
	[[ -x $f ]] || {
		rows+=("| $f | not present | | |")
		return 0
	}
	before=$(load)
	log "script $f"
	if "$f" >"$tmp/$name.log" 2>&1; then
		after=$(load)
		logs+=("$name")
		if grep -Eq "$summary" "$tmp/$name.log"; then
			while read -r line; do
				rows+=("| $f | $(tr -s ' \t' ' ' <<<"$line" | tr '|' '/') | end-to-end | $before → $after |")
			done < <(grep -E "$summary" "$tmp/$name.log")
		else
			rows+=("| $f | $(tail -n 6 "$tmp/$name.log" | tr '\n|' ' /') | end-to-end | $before → $after |")
		fi
	else
		logs+=("$name")
		rows+=("| $f | FAILED: $(tail -n 4 "$tmp/$name.log" | tr '\n|' ' /') | | $before |")
	fi
}

gobench events . 'Encode|Decode' -benchmem
gobench services ./ingest 'Normalize|Verify' -benchmem
CONVMETER_BENCH_PAIRS=$PAIRS gobench services ./window 'Apply$' -benchtime 3000000x
CONVMETER_BENCH_PAIRS=$PAIRS GOGC=400 gobench services ./window 'Apply$' -benchtime 3000000x
CONVMETER_BENCH_PAIRS=$PAIRS gobench services ./window 'MemoryPerPair' -benchtime 1x
gobench services ./window 'BusyPair' -benchtime 20000x
CONVMETER_BENCH_PAIRS=$SNAPSHOT_PAIRS gobench services ./window 'SnapshotRestore' -benchtime 1x
CONVMETER_BENCH_AUDIT_LINES=300000 gobench services ./audit 'Audit$' -benchtime 1x
for s in ingest aggregator billing ratelimit replay; do
	script "$s"
done

{
	echo "# convmeter benchmarks"
	echo
	echo "Run $(date -u +%FT%TZ) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(go version | cut -d' ' -f3),"
	echo "commit $(git rev-parse --short HEAD). Load average (1/5/15 min) before → after each step."
	echo
	echo "| benchmark | result | kind | load |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	for name in "${logs[@]}"; do
		echo
		echo "### Raw output of scripts/bench-$name.sh"
		echo
		echo '```'
		cat "$tmp/$name.log"
		echo '```'
	done
} >"$OUT"
rm -rf "$tmp"
log "wrote $OUT"
cat "$OUT"
