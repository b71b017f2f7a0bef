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
echo "== range watermark map at 270,000 regions"
go test ./libs/watermark -run '^$' -bench . -benchmem -benchtime 1x | grep -E '^Benchmark'

echo
echo "== sorter buffer (Pebble) and matcher alone, standard workload"
go test ./libs/sortbuf -run '^$' -bench StandardIngest -cpu 1,2 -benchtime 1x | grep -E '^Benchmark'
go test ./libs/txnmatch -run '^$' -bench MatcherPairs -cpu 1,2 -benchtime 1x | grep -E '^Benchmark'

echo
echo "== the whole ordering core, one process per run ($runs runs each)"
bin/tistream bench --rows "$rows" --runs "$runs" --procs 1,2 --modes committed,pairs
echo; echo "== fleet end-to-end lag: the simulator pushing 10,000 rows/s into an in-process fleet, pulled back over gRPC (target p99 < 2 s)"; bin/tistream lag --duration 30s --rows-per-sec 10000 --flush-interval 1s --dispatchers 1 --sorters 1 2> >(grep -v '^{"level"' >&2)
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

if [[ $quick != 1 ]]; then
  echo
  echo "== scale: 100,000 tables and 270,000 regions, 20 simulated seconds at 5,000 rows/s, replayed in one process"
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  /usr/bin/time -f "sim: %e s wall, peak RSS %M KiB" bin/tistream sim --store "file://$dir/buf" --truth "$dir/truth.jsonl" \
    --tables 100000 --regions 270000 --duration 20s --quiet | grep -E 'simulated|files'
  /usr/bin/time -f "replay: %e s wall, peak RSS %M KiB" bin/tistream replay --store "file://$dir/buf" --pool "file://$dir/pool" --quiet | sed -n 1p
  bin/tistream pull --pool "file://$dir/pool" --tenant 1 > "$dir/pulled.jsonl"
  bin/tistream verify --truth "$dir/truth.jsonl" --pulled "$dir/pulled.jsonl" | sed -n 1p
fi
