#!/usr/bin/env bash
# Compares two builds of `convmeter replay` on the same log in alternating runs: the shared VM's
# speed drifts by a third over an hour, so only runs side by side compare. This is how the
# README's replay figures were measured.
#
#   scripts/ab-replay.sh [-n ROUNDS] [-m dense|month] [-r RECORDS] OLD NEW
#
# OLD and NEW are git revisions (each built from a worktree of this repository) or convmeter
# binaries. The log is loadgen traffic in a 4-partition topic, written once and kept for later
# runs (topic prefix "ab-<model>-<records>."):
#   dense: 20 numbers of 4 WABAs, 20,000 users each, 2,000 sessions an hour each (1M records span
#          5 h: nothing expires), RECORDS 1,000,000 by default;
#   month: the loadgen defaults over 720 h (windows expire, facts fold), RECORDS 3,000,000.
# Each round replays with both builds (the order alternates between rounds) into a namespace of
# its own, `-compare=false`, which is dropped afterwards. Per run: records/s as the replay reports
# it; CPU-s of the replay process (user + system), of Redis (INFO cpu) and of the AOF rewrites the
# run set off (Redis's children, read once they have finished), and of the broker when
# scripts/services.sh started it; peak RSS. Then the mean of each build and NEW/OLD.
#
# It uses the services of scripts/services.sh (started, and stopped again, if not running) or
# CONVMETER_KAFKA_BROKERS and CONVMETER_REDIS_URL; it needs kcat and redis-cli (services.sh
# installs both) and GNU time (/usr/bin/time) for the process figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	sed -n '6p' "$0" | sed 's/^# *//' >&2
	exit 2
}
rounds=5 model=dense records=
while getopts n:m:r: opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	m) model=$OPTARG ;;
	r) records=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -eq 2 ]] || usage
case $model in
dense) gen=(-wabas 4 -numbers 20 -users 20000 -sessions-per-hour 2000 -duration 100000h) records=${records:-1000000} ;;
month) gen=(-users 20000 -duration 720h) records=${records:-3000000} ;;
*) usage ;;
esac
[[ -x /usr/bin/time ]] || { echo "ab-replay: /usr/bin/time (GNU time) is needed for the process figures" >&2; exit 1; }

log() { printf '[ab-replay] %s\n' "$*" >&2; }

tmp=$(mktemp -d)
started=
cleanup() {
	git worktree prune 2>/dev/null || true
	rm -rf "$tmp"
	if [[ -n $started ]]; then scripts/services.sh down >/dev/null || true; fi
}
trap cleanup EXIT

if [[ -z ${CONVMETER_KAFKA_BROKERS:-} || -z ${CONVMETER_REDIS_URL:-} ]]; then
	scripts/services.sh status >/dev/null 2>&1 || started=1
	eval "$(scripts/services.sh up)"
fi
export CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL
rcli() { redis-cli -u "$CONVMETER_REDIS_URL" "$@"; }
broker_pid=$(cat "${CONVMETER_STATE:-/tmp/convmeter-services}/kafka.pid" 2>/dev/null || true)

# build LABEL REV-OR-BINARY: the path of a convmeter binary.
build() {
	if [[ -f $2 && -x $2 ]]; then
		realpath "$2"
		return
	fi
	local wt=$tmp/wt-$1
	git worktree add -q --detach "$wt" "$2" >&2
	(cd "$wt/services" && go build -o "$tmp/convmeter-$1" ./cmd/convmeter) >&2
	git worktree remove --force "$wt" >&2
	echo "$tmp/convmeter-$1"
}
log "building $1 and $2"
old=$(build old "$1")
new=$(build new "$2")

# The log, written once: the records of the topic's partitions (end offsets) against RECORDS.
prefix=ab-$model-$records.
topic=${prefix}convmeter.message-events.v1
stored() {
	local total=0 p last
	for p in 0 1 2 3; do
		last=$(kcat -C -b "${CONVMETER_KAFKA_BROKERS%%,*}" -t "$topic" -p "$p" -o -1 -e -q -f '%o\n' 2>/dev/null | tail -n 1)
		[[ -n $last ]] && total=$((total + last + 1))
	done
	echo "$total"
}
if (($(stored) < records)); then
	log "writing the $model log: $records records into $topic"
	"$new" topics -topic-prefix "$prefix" -partitions 4 >/dev/null 2>&1
	"$new" loadgen -topic-prefix "$prefix" "${gen[@]}" -limit "$records" 2>&1 | grep -o '"items_per_second":[0-9]*' >&2 || true
fi

cpu() { rcli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/{m+=$2} /^used_cpu_(sys|user)_children:/{c+=$2} END{printf "%.3f %.3f", m, c}'; }
broker_ticks() { if [[ -n $broker_pid ]]; then awk '{print $14+$15}' "/proc/$broker_pid/stat" 2>/dev/null || echo 0; else echo 0; fi; }
idle_redis() { # no AOF rewrite running, nothing left to free lazily
	local i
	for i in $(seq 600); do
		if rcli info persistence | grep -q '^aof_rewrite_in_progress:1'; then sleep 0.2; continue; fi
		if rcli info memory | grep -q '^lazyfree_pending_objects:[1-9]'; then sleep 0.2; continue; fi
		return 0
	done
}
hz=$(getconf CLK_TCK)

results=$tmp/results
printf 'build round records/s process_cpu_s peak_rss_mb redis_cpu_s rewrite_cpu_s broker_cpu_s load\n' | tee "$results"
for r in $(seq "$rounds"); do
	order=(old new)
	((r % 2 == 0)) && order=(new old)
	for label in "${order[@]}"; do
		bin=$old
		[[ $label == new ]] && bin=$new
		idle_redis
		read -r m0 c0 <<<"$(cpu)"
		b0=$(broker_ticks)
		/usr/bin/time -f '%U %S %M' -o "$tmp/time" "$bin" replay -topic-prefix "$prefix" -compare=false >"$tmp/out" 2>&1 || {
			cat "$tmp/out" >&2
			exit 1
		}
		read -r m1 _ <<<"$(cpu)"
		b1=$(broker_ticks)
		idle_redis
		read -r _ c2 <<<"$(cpu)"
		rps=$(grep -o '"records_per_second":[0-9]*' "$tmp/out" | tail -n 1 | cut -d: -f2)
		ns=$(grep -o '"namespace":"[^"]*"' "$tmp/out" | head -n 1 | cut -d'"' -f4)
		read -r u s rss <"$tmp/time"
		printf '%s %d %s %.2f %d %.2f %.2f %.2f %s\n' "$label" "$r" "$rps" "$(echo "$u + $s" | bc)" $((rss / 1024)) \
			"$(echo "$m1 - $m0" | bc)" "$(echo "$c2 - $c0" | bc)" "$(echo "($b1 - $b0) / $hz" | bc -l)" \
			"$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$results"
		[[ -n $ns ]] && "$bin" replay -drop -prefix "$ns" >/dev/null 2>&1
	done
done
awk -v records="$records" 'NR > 1 {
	n[$1]++; rps[$1] += $3; p[$1] += $4; rd[$1] += $6; rw[$1] += $7; b[$1] += $8
} END {
	for (k in n) {
		cpu[k] = (p[k] + rd[k] + rw[k] + b[k]) / n[k] * 1e6 / records
		own[k] = (p[k] + rd[k] + b[k]) / n[k] * 1e6 / records
		printf "%s: mean %.0f records/s over %d runs; CPU-µs a record: process %.2f, Redis %.2f, AOF rewrite %.2f, broker %.2f, all %.2f\n",
			k, rps[k] / n[k], n[k], p[k] / n[k] * 1e6 / records, rd[k] / n[k] * 1e6 / records, rw[k] / n[k] * 1e6 / records, b[k] / n[k] * 1e6 / records, cpu[k]
	}
	if (n["old"] && n["new"])
		printf "new/old: records/s %.3f, CPU a record %.3f (%.3f without the AOF rewrites, which the runs of both builds set off)\n",
			(rps["new"] / n["new"]) / (rps["old"] / n["old"]), cpu["new"] / cpu["old"], own["new"] / own["old"]
}' "$results"
