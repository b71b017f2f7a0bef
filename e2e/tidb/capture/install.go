package capture

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/tikv/mvcc"
)

// installObserver puts an observer around the DBWriter of the unistore
// behind client, the kv client the mockstore hands its client hijacker.
//
// Why reach into unexported fields: a kv RPC's response does not say what
// the store applied (a repeated prewrite succeeds without writing, a
// region-wide ResolveLock lists no keys, CheckTxnStatus may write a
// rollback record or rewrite the lock, TxnHeartBeat rewrites it), so a
// capture built on responses alone would need a second MVCC engine to
// guess. TiKV's CDC observes the writes a store applies; the DBWriter is
// where unistore applies them, under the keys' latches, in order. Unistore
// offers no hook there, so the one DBWriter its MVCCStore holds is swapped
// once, before any request, along the path
// CodecClient.Client → clientRedirector.mockClient → RPCClient.usSvr →
// Server.mvccStore → MVCCStore.dbWriter. The path is checked here and fails
// loudly if TiDB's layout changes (the TiDB commit is pinned in go.mod).
func installObserver(client any, wrap func(mvcc.DBWriter) mvcc.DBWriter) error {
	v := reflect.ValueOf(client)
	for _, name := range []string{"Client", "mockClient", "usSvr", "mvccStore"} {
		for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return fmt.Errorf("install observer: nil before field %s", name)
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return fmt.Errorf("install observer: %s is not a struct (have %s)", name, v.Type())
		}
		f := v.FieldByName(name)
		if !f.IsValid() {
			return fmt.Errorf("install observer: %s has no field %s (the pinned TiDB's unistore layout changed)", v.Type(), name)
		}
		v = exposed(f)
	}
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	f := v.FieldByName("dbWriter")
	if !f.IsValid() {
		return fmt.Errorf("install observer: %s has no field dbWriter", v.Type())
	}
	f = exposed(f)
	inner, ok := f.Interface().(mvcc.DBWriter)
	if !ok || inner == nil {
		return fmt.Errorf("install observer: dbWriter is %s", f.Type())
	}
	f.Set(reflect.ValueOf(wrap(inner)))
	return nil
}

// exposed makes an unexported field readable and settable.
func exposed(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}
