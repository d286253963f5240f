#!/usr/bin/env bash
# gofmt check over all modules, plus golangci-lint when it is installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODULES=(events services projections)

log() { printf '[lint] %s\n' "$*" >&2; }

rc=0

unformatted=$(gofmt -l "${MODULES[@]}")
if [[ -n $unformatted ]]; then
	log "gofmt: these files need formatting (run: gofmt -w <file>):"
	printf '%s\n' "$unformatted" >&2
	rc=1
else
	log "gofmt: ok"
fi

if command -v golangci-lint >/dev/null 2>&1; then
	for mod in "${MODULES[@]}"; do
		log "golangci-lint: $mod"
		# --allow-serial-runners: wait for another run on this machine (an editor, a second
		# checkout) instead of failing on its lock.
		(cd "$mod" && golangci-lint run --allow-serial-runners ./...) || rc=1
	done
else
	log "golangci-lint not installed; skipping"
fi

if ((rc)); then
	log "SUMMARY: lint FAILED"
else
	log "SUMMARY: lint ok"
fi
exit "$rc"
