package server

import (
	"context"
	"time"

	"fmt"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tikv/client-go/v2/tikvrpc"
	"net/http"
	"reflect"
	"strconv"

	"github.com/tikv/client-go/v2/tikv"
	"github.com/tikv/client-go/v2/txnkv/transaction"
	"github.com/tistream/tistream/e2e/tidb/capture"
	"github.com/tistream/tistream/libs/tidbcodec"
)

// crash writes rows [from, from+rows) of a table (id BIGINT PRIMARY KEY,
// v BIGINT: column 2 = id) in a transaction whose client dies between
// prewrite and commit: every lock is left behind (mode=rollback, with a
// lock TTL that has already expired, so a reader rolls it back) or only
// the primary is committed (mode=commit, so a reader commits the rest at
// the primary's commit ts). TiDB's readers resolve the locks they meet.
func (s *Server) crash(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	table, err1 := strconv.ParseInt(q.Get("table"), 10, 64)
	from, err2 := strconv.ParseInt(q.Get("from"), 10, 64)
	rows, err3 := strconv.Atoi(q.Get("rows"))
	mode := q.Get("mode")
	if err1 != nil || err2 != nil || err3 != nil || rows < 2 || (mode != "rollback" && mode != "commit") {
		http.Error(w, "want table, from, rows >= 2 and mode=rollback|commit", http.StatusBadRequest)
		return
	}
	startTs, err := s.crashTxn(r.Context(), table, from, rows, mode)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]uint64{"start_ts": startTs})
}

func (s *Server) crashTxn(ctx context.Context, table, from int64, rows int, mode string) (uint64, error) {
	kvs, ok := reflect.ValueOf(s.Store).Elem().FieldByName("KVStore").Interface().(*tikv.KVStore)
	if !ok || kvs == nil {
		return 0, fmt.Errorf("the store has no tikv.KVStore")
	}
	txn, err := kvs.Begin()
	if err != nil {
		return 0, err
	}
	for h := from; h < from+int64(rows); h++ {
		v, err := tidbcodec.EncodeRow(nil, []tidbcodec.ColumnValue{{ID: 2, Value: tidbcodec.IntValue(h)}})
		if err != nil {
			return 0, err
		}
		if err := txn.Set(tidbcodec.EncodeRecordKey(table, h), v); err != nil {
			return 0, err
		}
	}
	c, err := transaction.TxnProbe{KVTxn: txn}.NewCommitter(1)
	if err != nil {
		return 0, err
	}
	if err := c.InitKeysAndMutations(); err != nil {
		return 0, err
	}
	c.SetLockTTL(1) // expired at once: a reader may resolve it without waiting
	if err := c.PrewriteAllMutations(ctx); err != nil {
		return 0, fmt.Errorf("prewrite: %w", err)
	}
	if mode == "commit" {
		if err := commitPrimary(ctx, kvs, c.GetPrimaryKey(), c.GetStartTS(), capture.TSO()); err != nil {
			return 0, fmt.Errorf("commit the primary: %w", err)
		}
	}
	c.CloseTTLManager()
	return c.GetStartTS(), nil // the client "dies": nothing more is sent
}

// commitPrimary commits the transaction's primary key only, as a client
// does right before it dies. A region error (the region split meanwhile:
// TiDB splits a region for every new table) is retried on the region the
// key is in now.
func commitPrimary(ctx context.Context, kvs *tikv.KVStore, primary []byte, startTs, commitTs uint64) error {
	bo := tikv.NewBackofferWithVars(ctx, 20000, nil)
	for try := 0; ; try++ {
		loc, err := kvs.GetRegionCache().LocateKey(bo, primary)
		if err != nil {
			return err
		}
		req := tikvrpc.NewRequest(tikvrpc.CmdCommit, &kvrpcpb.CommitRequest{StartVersion: startTs, Keys: [][]byte{primary}, CommitVersion: commitTs})
		resp, err := kvs.SendReq(bo, req, loc.Region, 10*time.Second)
		if err != nil {
			return err
		}
		regErr, err := resp.GetRegionError()
		if err != nil {
			return err
		}
		if regErr != nil {
			if try == 20 {
				return fmt.Errorf("region error after %d tries: %v", try+1, regErr)
			}
			kvs.GetRegionCache().InvalidateCachedRegion(loc.Region)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if kerr := resp.Resp.(*kvrpcpb.CommitResponse).GetError(); kerr != nil {
			return fmt.Errorf("%v", kerr)
		}
		return nil
	}
}
