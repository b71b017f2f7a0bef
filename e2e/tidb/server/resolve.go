package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tikv/client-go/v2/oracle"
	"github.com/tikv/client-go/v2/tikv"
	"github.com/tikv/client-go/v2/tikvrpc"
	"github.com/tikv/client-go/v2/txnkv/txnlock"
)

// ResolveStaleLocks resolves the locks older than age, region by region,
// as TiCDC's puller does for a region whose resolved ts lags: a
// transaction whose client died leaves locks that TiDB's readers step
// around (they remember the transaction's fate) but do not clean, and a
// region's resolved ts cannot pass its oldest lock. TiStream never talks to
// TiKV, so the producer side has to do it. It returns how many locks it
// found and handed to TiDB's lock resolver.
func (s *Server) ResolveStaleLocks(ctx context.Context, age time.Duration) (int, error) {
	cutoff := oracle.ComposeTS(oracle.GetPhysical(time.Now().Add(-age)), 0)
	stale := s.Capture.LocksBefore(cutoff)
	if len(stale) == 0 {
		return 0, nil
	}
	kvs, ok := reflect.ValueOf(s.Store).Elem().FieldByName("KVStore").Interface().(*tikv.KVStore)
	if !ok || kvs == nil {
		return 0, fmt.Errorf("the store has no tikv.KVStore")
	}
	bo := tikv.NewBackofferWithVars(ctx, 20000, nil)
	found := 0
	seen := make(map[uint64]bool)
	for _, key := range stale {
		loc, err := kvs.GetRegionCache().LocateKey(bo, key)
		if err != nil {
			return found, err
		}
		if seen[loc.Region.GetID()] {
			continue
		}
		seen[loc.Region.GetID()] = true
		req := tikvrpc.NewRequest(tikvrpc.CmdScanLock, &kvrpcpb.ScanLockRequest{MaxVersion: cutoff,
			StartKey: loc.StartKey, EndKey: loc.EndKey, Limit: 1024})
		resp, err := kvs.SendReq(bo, req, loc.Region, 10*time.Second)
		if err != nil {
			return found, err
		}
		if regErr, _ := resp.GetRegionError(); regErr != nil {
			continue // the next round finds it again
		}
		r := resp.Resp.(*kvrpcpb.ScanLockResponse)
		if r.Error != nil {
			return found, fmt.Errorf("scan locks of region %d: %v", loc.Region.GetID(), r.Error)
		}
		locks := make([]*txnlock.Lock, 0, len(r.Locks))
		for _, l := range r.Locks {
			locks = append(locks, txnlock.NewLock(l))
		}
		if len(locks) == 0 {
			continue
		}
		found += len(locks)
		if _, err := kvs.GetLockResolver().ResolveLocks(bo, 0, locks); err != nil {
			return found, fmt.Errorf("resolve %d locks of region %d (first %s): %w", len(locks), loc.Region.GetID(),
				hex.EncodeToString(locks[0].Key), err)
		}
	}
	s.Capture.CountStaleResolved(found)
	return found, nil
}
