#!/usr/bin/env bash
# End-to-end benchmark of `convmeter ingest`: signed webhook requests with 100 statuses each, sent
# concurrently over loopback to an ingest server (started in process by the load generator) that
# answers 200 only after Kafka acknowledged every event. Prints the load generator's JSON result
# line(s) and the machine's load before and after.
#
#   scripts/bench-ingest.sh [loadgen flags...]     e.g. scripts/bench-ingest.sh -c 64 -d 30s
#
# Defaults: -c 32 -d 20s -n 100 -partitions 12. Needs Kafka (scripts/services.sh up).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ -z ${CONVMETER_KAFKA_BROKERS:-} ]]; then
	eval "$(scripts/services.sh up)"
fi
bin=$(mktemp -d)/loadgen
(cd services && go build -o "$bin" ./ingest/loadgen)
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(go version | cut -d' ' -f3), kafka at $CONVMETER_KAFKA_BROKERS" >&2
echo "# loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" -brokers "$CONVMETER_KAFKA_BROKERS" "$@"
echo "# loadavg after:  $(cut -d' ' -f1-3 /proc/loadavg)" >&2
rm -f "$bin"
