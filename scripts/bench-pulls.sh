#!/usr/bin/env bash
# bench-pulls.sh POOL_DIR UNTIL_TS DB TABLE [BIN]: time and peak RSS of pulls over
# a replayed pool (issue 11 item 4): `tistream pull --pool` of the tenant, of
# database DB and of table TABLE, then PullTenant and PullDB through an
# api-server process (with an embedded etcd and a schema registry in their
# own processes; the api-server's peak RSS is its VmHWM, the registry's is
# printed apart). BIN defaults to bin/tistream. Ports 17530-17631 and 23790 on
# 127.0.0.1. START_WAIT (600s) bounds how long an api-server waits for the registry.
set -euo pipefail
pool=$1 until=$2 db=$3 table=$4 bin=${5:-bin/tistream}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for what in "tenant" "db $db" "table $table"; do
  set -- $what
  args=(); [[ $1 == db ]] && args=(--db "$2"); [[ $1 == table ]] && args=(--table "$2")
  /usr/bin/time -f "pull --pool, $what: %e s wall, %U s user, peak RSS %M KiB" \
    "$bin" pull --pool "file://$pool" --tenant 1 "${args[@]}" > "$work/pulled.jsonl"
  echo "  $(grep -c '"type":"row"' "$work/pulled.jsonl") rows"
done

"$bin" etcd --data-dir "$work/etcd" --listen-client 127.0.0.1:23790 > "$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:23790/health > /dev/null && break; sleep 0.2; done
# The schema registry follows the tenants registered in etcd.
curl -sf -X POST http://127.0.0.1:23790/v3/kv/put \
  -d "{\"key\":\"$(printf /tistream/v1/tenants/1 | base64 -w0)\",\"value\":\"\"}" > /dev/null
"$bin" run -target=schema-registry --insecure --etcd http://127.0.0.1:23790 --pool "file://$pool" \
  --grpc-addr 127.0.0.1:17530 --http-addr 127.0.0.1:17531 > "$work/registry.log" 2>&1 &
reg=$!
pids+=($reg)
# Time the pulls, not the registry's load of every table's schema.
for _ in $(seq 3000); do
  grep -q "schema history loaded" "$work/registry.log" && break
  kill -0 "$reg" 2> /dev/null || { echo "the schema registry stopped:"; tail -3 "$work/registry.log"; exit 1; }
  sleep 0.2
done
for what in "PullTenant" "PullDB $db"; do
  set -- $what
  args=(); [[ $1 == PullDB ]] && args=(--db "$2")
  "$bin" run -target=api-server --insecure --etcd http://127.0.0.1:23790 --pool "file://$pool" \
    --schema-registry 127.0.0.1:17530 --grpc-addr 127.0.0.1:17630 --http-addr 127.0.0.1:17631 \
    --start-wait "${START_WAIT:-600s}" --registry-timeout 120s > "$work/api.log" 2>&1 &
  api=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:17631/readyz > /dev/null && break; sleep 0.2; done
  start=$(date +%s.%N)
  rc=0
  "$bin" pull --api 127.0.0.1:17630 --insecure --tenant 1 --until-resolved "$until" --timeout 900s "${args[@]}" \
    > "$work/pulled.jsonl" 2> "$work/pull.err" || rc=$?
  end=$(date +%s.%N)
  printf '%s through an api-server: %.1f s wall, api-server peak RSS %d KiB, %d rows, exit %d\n' \
    "$what" "$(echo "$end - $start" | bc)" "$(awk '/VmHWM/ {print $2}' /proc/$api/status)" \
    "$(grep -c '"type":"row"' "$work/pulled.jsonl" || true)" "$rc"
  [[ $rc == 0 ]] || sed -n '$p' "$work/pull.err" | cut -c1-300
  kill "$api"; wait "$api" 2>/dev/null || true
done
echo "schema registry peak RSS $(awk '/VmHWM/ {print $2}' /proc/$reg/status) KiB (it holds every table's schema)"
