#!/usr/bin/env bash
# The README's first command: on a fresh machine, start a whole TiStream
# fleet on the embedded default (`tistream up`: embedded etcd, local-disk
# object store, all five services), push a simulated TiDB cluster's change
# files into it in real time, pull the tenant's ordered change stream from
# the api-server, and verify it against the simulator's truth.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-$PWD/demo-data}
duration=${DEMO_DURATION:-10s}
rm -rf "$dir"
mkdir -p "$dir"
echo "== building tistream"
go build -o bin/tistream ./services/cmd/tistream

echo
echo "== starting a fleet: bin/tistream up --data-dir $dir/fleet"
bin/tistream up --data-dir "$dir/fleet" --etcd-port 0 --meta-port 0 --api-port 0 > "$dir/up.out" 2>&1 &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
	grep -q '^pull a tenant:' "$dir/up.out" 2>/dev/null && break
	if ! kill -0 $up 2>/dev/null; then
		cat "$dir/up.out"
		echo "demo: tistream up exited" >&2
		exit 1
	fi
	sleep 0.1
done
grep -q '^pull a tenant:' "$dir/up.out" || { cat "$dir/up.out"; echo "demo: the fleet did not come up in 60 s" >&2; exit 1; }
grep -v '^push\|^pull' "$dir/up.out"
store=$(awk '$1 == "object" && $2 == "store" {print $3}' "$dir/up.out")
meta=$(awk '$1 == "meta-server" {sub("grpc=", "", $2); print $2}' "$dir/up.out")
api=$(awk '$1 == "api-server" {sub("grpc=", "", $2); print $2}' "$dir/up.out")
# Security is on: tistream up made a throw-away CA and a credentials
# directory per client (the commands it printed name them).
upstream=(--credentials "$dir/fleet/tls/upstream")
admin=(--credentials "$dir/fleet/tls/admin")

echo
echo "== simulating a 3-store cluster for $duration in real time (5,000 rows/s, splits, merges, leader transfers, DDLs)"
bin/tistream sim --store "$store" --meta "$meta" "${upstream[@]}" --truth "$dir/truth.jsonl" --duration "$duration" --quiet
end=$(tail -n 1 "$dir/truth.jsonl" | sed -n 's/.*"resolved_ts":\([0-9]*\).*/\1/p')
[ -n "$end" ] || { echo "demo: the truth file has no end line" >&2; exit 1; }

echo
echo "== pulling tenant 1 from the api-server until it is resolved past the simulation's end"
bin/tistream pull --api "$api" "${admin[@]}" --tenant 1 --until-resolved "$end" --timeout 120s > "$dir/pulled.jsonl"
bin/tistream verify --truth "$dir/truth.jsonl" --pulled "$dir/pulled.jsonl" --tenant 1

table=$(grep -m1 '"type":"row"' "$dir/truth.jsonl" | sed -n 's/.*"table_id":\([0-9]*\).*/\1/p')
echo
echo "== pulling one table (id $table) and verifying it"
bin/tistream pull --api "$api" "${admin[@]}" --tenant 1 --table "$table" --until-resolved "$end" --timeout 120s > "$dir/pulled-table.jsonl"
bin/tistream verify --truth "$dir/truth.jsonl" --pulled "$dir/pulled-table.jsonl" --tenant 1 --table "$table"

echo
echo "== the fleet's view: owners, watermarks and lag (bin/tistream admin tasks --meta $meta ${admin[*]} --tenant 1)"
bin/tistream admin tasks --meta "$meta" "${admin[@]}" --tenant 1
echo
echo "everything is under $dir (fleet logs: $dir/fleet/tistream.log)"
