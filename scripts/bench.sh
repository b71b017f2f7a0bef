#!/usr/bin/env bash
# make bench: every benchmark of the project, printed as tables. Figures
# depend on the machine; the closing notes of the issues record what was
# measured where. BENCH_QUICK=1 shortens the runs (1 run, 200k rows, no scale run).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${BENCH_QUICK:-0}
runs=3 rows=1000000 benchtime=3x
if [[ $quick == 1 ]]; then runs=1 rows=200000 benchtime=1x; fi

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
go build -o bin/tistream ./services/cmd/tistream

echo
echo "== store change file decoder (30 s of a 5,000 rows/s history, 3 stores): -cpu 1 is per core"
go test ./libs/formats/storefile -run '^$' -bench Decode -cpu 1,2 -benchtime "$benchtime" | grep -E '^(Benchmark|goos|cpu)'

echo
echo "== customer-managed-key encryption (libs/crypt over an in-memory store): put/get 1 MiB, 4 KiB ranged reads"
go test ./libs/crypt -run '^$' -bench Encryption -benchmem | grep -E '^Benchmark'

echo
echo "== range watermark map at 270,000 regions"
go test ./libs/watermark -run '^$' -bench . -benchmem -benchtime 1x | grep -E '^Benchmark'

# The go test benchmarks of the ordering core report, per phase, rows/s,
# Go heap allocations and bytes per row, and x_pebble: rows/s as a multiple
# of plain Pebble (the same rows, one instance, WAL off, 1,000-row batches,
# then read back) measured in the same process at the same GOMAXPROCS.
ordering_table() {
  awk '/^Benchmark/ {
    delete m; for (i = 3; i < NF; i += 2) m[$(i+1)] = $i
    if (!hdr++) printf "%-46s %9s %9s %9s %9s %9s %9s %11s %8s\n", "benchmark", "ingest/s", "x pebble", "output/s", "x pebble", "e2e/s", "x pebble", "allocs/row", "B/row"
    printf "%-46s %8.0fk %8.2fx %8.0fk %8.2fx %8.0fk %8.2fx %11.3f %8.0f\n", $1, m["ingest_rows/s"]/1e3, m["ingest_x_pebble"],
      m["output_rows/s"]/1e3, m["output_x_pebble"], m["e2e_rows/s"]/1e3, m["e2e_x_pebble"], m["e2e_allocs/row"], m["e2e_B/row"] }'
}

echo
echo "== sorter buffer (Pebble alone, and memory-first) and matcher + buffer, standard workload, beside plain Pebble"
go test ./libs/sortbuf -run '^$' -bench StandardIngest -cpu 1,2 -benchtime 1x | ordering_table
go test ./libs/txnmatch -run '^$' -bench MatcherPairs -cpu 1,2 -benchtime 1x | ordering_table

echo
echo "== the whole ordering core and plain Pebble, one process per run ($runs runs each, alternating); floor = the pool path alone, no ordering core (a bound, not a sorter)"
bin/tistream bench --rows "$rows" --runs "$runs" --procs 1,2 --modes committed,pairs,floor
echo
echo "== the same, warm: every child runs the workload once untimed first (a long-running process's memory and page cache)"
bin/tistream bench --warm --rows "$rows" --runs "$runs" --procs 1,2 --modes committed,pairs
reqdir=$(mktemp -d)
echo; echo "== fleet end-to-end lag: the simulator pushing 10,000 rows/s into an in-process fleet, pulled back over gRPC (target p99 < 2 s)"; bin/tistream lag --duration 30s --rows-per-sec 10000 --flush-interval 1s --dispatchers 1 --sorters 1 --requests-out "$reqdir/busy.json" --requests-label "4 ranges, 10,000 rows/s" 2> >(grep -v '^{"level"' >&2)
echo; echo "== object-store requests of a quiet tenant: 64 tables in 64 ranges at 100 rows/s for 30 s (issue 14)"; bin/tistream lag --duration 30s --rows-per-sec 100 --tables 64 --initial-ranges 64 --requests-out "$reqdir/quiet.json" --requests-label "64 ranges, 100 rows/s" 2> >(grep -v '^{"level"' >&2)
echo; echo "== object-store request cost at S3 list prices: the two runs above, and a fleet of 100 store streams, 10,000 ranges, 100,000 rows/s fitted from them"; bin/tistream cost --runs "$reqdir/quiet.json,$reqdir/busy.json" --stores 100 --ranges 10000 --rows-per-sec 100000
rm -rf "$reqdir"
echo; echo "== one dispatcher and one sorter at saturation: drain a backlog of $rows row changes, default settings then the flow-control window opened"; for a in "" "--dispatcher-max-in-flight 1000"; do bin/tistream lag --backlog-rows "$rows" $a 2> >(grep -v '^{"level"' >&2); done

echo
echo "== client: decoding a row change into column names and typed values (schema cached)"
go test ./client -run '^$' -bench DecodeRow -benchmem | grep -E '^Benchmark'
echo
echo "== MySQL sink into MariaDB alone (a fake api-server with the rows ready): 5,000 transactions of 10 rows"
go test ./libs/sink/mysql -run '^$' -bench SinkApply -benchtime 3x | grep -E '^Benchmark'
echo
echo "== MySQL sink end to end: simulator -> fleet of processes -> sink -> MariaDB at 5,000 rows/s for 30 s (with and without long transactions)"
for extra in "" "--long-txn-every 0"; do
  TISTREAM_SINK_MEASURE=1 TISTREAM_SINK_SIM_ARGS="$extra" go test ./e2e -count=1 -v -run 'TestSinkMySQLMeasure$' | grep -E 'sink applied|rows equal'
done

echo
echo "== store change files at ~100,000 regions per store: routing one steady-state file, format version 1 (full headers) vs 2 (deltas, LeaderResolvedTs)"
go test ./libs/route -run '^$' -bench RouteSteadyFiles -benchtime 2x | grep -E '^Benchmark'
echo "== routing a busy store's files (16 regions, 10,000 rows/s): the dispatcher's cost per row event"
go test ./libs/route -run '^$' -bench RouteBusyFiles -benchmem -benchtime 5x | grep -E '^Benchmark'
echo "== the Ingest hop per row event: generated messages (EncodeBatch/DecodeBatch, the path before the wire codec) vs routepb's Request/Received (the path used)"
go test ./libs/route/routepb -run '^$' -bench 'Batch|Request|Received' -benchmem | grep -E '^Benchmark'

if [[ $quick != 1 ]]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  for regions in 270000 1000000; do
    echo
    echo "== scale: 100,000 tables and $regions regions, 20 simulated seconds at 5,000 rows/s, replayed in one process"
    rm -rf "${dir:?}"/*
    /usr/bin/time -f "sim: %e s wall, %U s user, %S s system, peak RSS %M KiB" bin/tistream sim --store "file://$dir/buf" --truth "$dir/truth.jsonl" \
      --tables 100000 --regions "$regions" --duration 20s --quiet | grep -E 'simulated|files'
    /usr/bin/time -f "replay: %e s wall, %U s user, %S s system, peak RSS %M KiB" bin/tistream replay --store "file://$dir/buf" --pool "file://$dir/pool" --quiet | sed -n 1p
    bin/tistream pull --pool "file://$dir/pool" --tenant 1 > "$dir/pulled.jsonl"
    bin/tistream verify --truth "$dir/truth.jsonl" --pulled "$dir/pulled.jsonl" | sed -n 1p
  done

  echo
  echo "== pulls over 1,000,000 tables (1,000,000 regions, 20 simulated seconds): pull --pool, PullTenant and PullDB, time and peak RSS (issue 11)"
  rm -rf "${dir:?}"/*
  /usr/bin/time -f "sim: %e s wall, %U s user, %S s system, peak RSS %M KiB" \
    bin/tistream sim --store "file://$dir/buf" --truth "$dir/truth.jsonl" --tables 1000000 --regions 1000000 --duration 20s --quiet > "$dir/sim.txt"
  grep -E 'simulated|files' "$dir/sim.txt"
  /usr/bin/time -f "replay: %e s wall, %U s user, %S s system, peak RSS %M KiB" \
    bin/tistream replay --store "file://$dir/buf" --pool "file://$dir/pool" --quiet | sed -n 1p
  until=$(sed -n 's/^final resolved ts \([0-9]*\).*/\1/p' "$dir/sim.txt")
  table=$(grep -m1 -o '"table_id":[0-9]*' "$dir/truth.jsonl" | cut -d: -f2)
  scripts/bench-pulls.sh "$dir/pool" "$until" db2 "$table"
fi
