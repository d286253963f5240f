#!/usr/bin/env bash
# Run `go vet` and `go test -race` for every module against real Kafka + Redis.
#
#   scripts/test.sh [extra go test args...]     e.g. scripts/test.sh -run TestFoo -v
#
# If CONVMETER_KAFKA_BROKERS / CONVMETER_REDIS_URL are not both set, the local
# services are started with scripts/services.sh and stopped again on exit
# (unless they were already running before this script started).
# Every module is vetted and tested even if an earlier step fails; the exit
# status is non-zero if any step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODULES=(events services projections)

log() { printf '[test] %s\n' "$*" >&2; }

if [[ -z ${CONVMETER_KAFKA_BROKERS:-} || -z ${CONVMETER_REDIS_URL:-} ]]; then
	preset_kafka=${CONVMETER_KAFKA_BROKERS:-}
	preset_redis=${CONVMETER_REDIS_URL:-}
	if scripts/services.sh status >/dev/null 2>&1; then
		log "local services already running; using them and leaving them up"
	else
		# Stop what we start, on success, failure or interrupt.
		trap 'log "stopping local services"; scripts/services.sh down || true' EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
	fi
	services_env=$(scripts/services.sh up)
	eval "$services_env"
	# A value the caller set explicitly wins over the local default.
	[[ -z $preset_kafka ]] || CONVMETER_KAFKA_BROKERS=$preset_kafka
	[[ -z $preset_redis ]] || CONVMETER_REDIS_URL=$preset_redis
fi
export CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL
# Services given by the caller must answer: otherwise every integration test fails with a
# connection error, which hides that the environment, not the code, is wrong.
reachable() { # host:port
	local host=${1%:*} port=${1##*:}
	timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}
redis_addr=${CONVMETER_REDIS_URL#*://}
redis_addr=${redis_addr#*@}
redis_addr=${redis_addr%%/*}
for addr in ${CONVMETER_KAFKA_BROKERS//,/ } "$redis_addr"; do
	if ! reachable "$addr"; then
		log "nothing accepts connections at $addr (CONVMETER_KAFKA_BROKERS=$CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL=$CONVMETER_REDIS_URL): start those services, or unset both variables to let this script start local ones"
		exit 2
	fi
done
# Test helpers must fail (not skip) when the services are unreachable.
export CONVMETER_REQUIRE_SERVICES=1

log "$(go version)"
log "CONVMETER_KAFKA_BROKERS=$CONVMETER_KAFKA_BROKERS CONVMETER_REDIS_URL=$CONVMETER_REDIS_URL"

failed=()
passed=()
skipped=()
run_step() { # label dir cmd...
	local label=$1 dir=$2 start=$SECONDS rc=0
	shift 2
	log "==> $label: (cd $dir && $*)"
	(cd "$dir" && "$@") || rc=$?
	if ((rc == 0)); then
		passed+=("$label")
		log "<== $label: ok ($((SECONDS - start))s)"
	else
		failed+=("$label")
		log "<== $label: FAILED rc=$rc ($((SECONDS - start))s)"
	fi
}

for mod in "${MODULES[@]}"; do
	if [[ ! -f $mod/go.mod ]]; then
		failed+=("$mod: missing go.mod")
		log "$mod/go.mod not found"
		continue
	fi
	if pkgs=$(cd "$mod" && go list ./... 2>/dev/null) && [[ -z $pkgs ]]; then
		log "WARNING: module $mod has no Go packages yet; skipping vet/test"
		skipped+=("$mod")
		continue
	fi
	run_step "$mod: go vet" "$mod" go vet ./...
	run_step "$mod: go test" "$mod" go test -race -count=1 -timeout 30m ./... "$@"
done

# The patched miniredis (audit and dev run on it): outside the workspace, its own go.mod.
run_step "third_party/miniredis: go vet" third_party/miniredis env GOWORK=off go vet .
run_step "third_party/miniredis: go test" third_party/miniredis env GOWORK=off go test -race -count=1 . "$@"

skip_note=
if ((${#skipped[@]})); then skip_note="; skipped modules without packages: ${skipped[*]}"; fi
if ((${#failed[@]})); then
	log "SUMMARY: FAIL: ${#failed[@]} step(s) failed, ${#passed[@]} passed. Failed: $(printf '[%s] ' "${failed[@]}")$skip_note"
	exit 1
fi
log "SUMMARY: PASS: all ${#passed[@]} steps passed$skip_note"
