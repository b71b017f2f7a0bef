package metaserver

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errNotLeader: the write was refused because this meta-server no longer
// leads (its election key is gone or belongs to a newer campaign).
var errNotLeader = errors.New("this meta-server is not the leader")

// term is one period of leadership, identified by the election key this
// server created and the key's create revision. The key exists with that
// create revision exactly as long as the term lasts, so comparing it in a
// transaction makes the write conditional on still leading — a paused or
// partitioned ex-leader cannot write even if it still believes it leads.
type term struct {
	key    string
	rev    int64
	ctx    context.Context // ends with the term: leader-only loops run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (t *term) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)
}

// go runs fn as part of the term; endTerm waits for it.
func (t *term) spawn(fn func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
}

// commit applies ops in one transaction if the term still leads and every
// cmp holds. It reports whether the write happened and at which revision; a
// failed cmp is (false, 0, nil), a lost leadership errNotLeader.
func (s *Service) commit(ctx context.Context, t *term, cmps []clientv3.Cmp, ops ...clientv3.Op) (bool, int64, error) {
	all := append([]clientv3.Cmp{t.guard()}, cmps...)
	resp, err := s.etcd.Txn(ctx).If(all...).Then(ops...).Else(clientv3.OpGet(t.key)).Commit()
	if err != nil {
		return false, 0, fmt.Errorf("etcd transaction: %w", err)
	}
	if resp.Succeeded {
		return true, resp.Header.Revision, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || kvs[0].CreateRevision != t.rev {
		return false, 0, errNotLeader
	}
	return false, 0, nil
}
