#!/usr/bin/env bash
# Runs every Go fuzz target in the workspace for the given time each
# (default 3s). Crashers are written to testdata/fuzz/ by go test; commit them.
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' libs services client 2>/dev/null | sort || true)
for f in $targets; do
  dir=$(dirname "$f")
  for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
    echo "fuzz: $dir $fn ($fuzztime)"
    # The TiDB conformance module is outside go.work (TiDB's pins must not
    # reach the product), so it runs with the workspace off.
    gowork=""
    case "$dir" in libs/tidbcodec/conformance*) gowork=off ;; esac
    (cd "$dir" && GOWORK=$gowork go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$fuzztime" .)
  done
done
