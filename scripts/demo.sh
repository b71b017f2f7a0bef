#!/usr/bin/env bash
# The README's first command: on a fresh machine, simulate a small TiDB
# cluster into a local folder, run the ordering core over it, pull the
# tenant's change stream and verify it against the simulator's truth.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-$PWD/demo-data}
duration=${DEMO_DURATION:-10s}
rm -rf "$dir"
mkdir -p "$dir"
echo "== building tistream"
go build -o bin/tistream ./services/cmd/tistream
echo
echo "== simulating a 3-store cluster for $duration (5,000 rows/s, splits, merges, leader transfers)"
bin/tistream sim --store "file://$dir/buffer" --truth "$dir/truth.jsonl" --duration "$duration" --quiet
echo
echo "== replaying the store files through the ordering core into a committed data pool"
bin/tistream replay --store "file://$dir/buffer" --pool "file://$dir/pool" --ranges 2 --quiet
echo
echo "== pulling tenant 1 and verifying it against the truth"
bin/tistream pull --pool "file://$dir/pool" --tenant 1 > "$dir/pulled.jsonl"
bin/tistream verify --truth "$dir/truth.jsonl" --pulled "$dir/pulled.jsonl"
echo
echo "everything is under $dir"
