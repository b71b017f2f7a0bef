package metaserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// entry is one key of a mirror. Values are shared: never modify them, clone.
type entry[M proto.Message] struct {
	key    string
	val    M
	modRev int64
}

// mirror keeps an in-memory copy of one etcd prefix: a full read, then a
// watch from the next revision. When the watch breaks (compaction, a lost
// etcd leader) it reads the prefix again. Scheduling from a mirror instead of
// reading etcd each round keeps a round's cost independent of etcd; writes
// compare the mod revision seen here, so a mirror that lags only costs a
// retry.
type mirror[M proto.Message] struct {
	name   string
	prefix string
	newMsg func() M
	cli    *clientv3.Client
	log    *slog.Logger
	// onChange runs (outside the lock) after every applied change; old or
	// cur is nil when the key did not or does not exist. After a full read
	// it runs once with both nil.
	onChange func(old, cur *entry[M])

	mu     sync.RWMutex
	items  map[string]*entry[M]
	synced chan struct{} // closed after the first full read
	once   sync.Once
}

func newMirror[M proto.Message](name, prefix string, cli *clientv3.Client, log *slog.Logger, newMsg func() M) *mirror[M] {
	return &mirror[M]{name: name, prefix: prefix, newMsg: newMsg, cli: cli, log: log,
		items: map[string]*entry[M]{}, synced: make(chan struct{})}
}

// run keeps the mirror up to date until ctx ends.
func (m *mirror[M]) run(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := m.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("etcd mirror restarts", "mirror", m.name, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// follow reads the prefix, then applies watch events until the watch ends.
func (m *mirror[M]) follow(ctx context.Context) error {
	resp, err := m.cli.Get(ctx, m.prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("read %s: %w", m.prefix, err)
	}
	items := make(map[string]*entry[M], len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if e := m.decode(string(kv.Key), kv.Value, kv.ModRevision); e != nil {
			items[e.key] = e
		}
	}
	m.mu.Lock()
	m.items = items
	m.mu.Unlock()
	m.once.Do(func() { close(m.synced) })
	if m.onChange != nil {
		m.onChange(nil, nil)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := m.cli.Watch(wctx, m.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", m.prefix, err)
		}
		m.apply(wr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

func (m *mirror[M]) decode(key string, val []byte, modRev int64) *entry[M] {
	msg := m.newMsg()
	if err := proto.Unmarshal(val, msg); err != nil {
		// A value we cannot read is left out rather than stopping the
		// meta-server: the scheduler cannot act on it anyway.
		m.log.Error("etcd value does not decode", "mirror", m.name, "key", key, "err", err)
		return nil
	}
	return &entry[M]{key: key, val: msg, modRev: modRev}
}

// apply takes a watch response's events in at once (one transaction's
// writes are seen together, never half), then reports them.
func (m *mirror[M]) apply(wr clientv3.WatchResponse) {
	type change struct{ old, cur *entry[M] }
	changes := make([]change, 0, len(wr.Events))
	for _, ev := range wr.Events {
		key := string(ev.Kv.Key)
		var cur *entry[M]
		if ev.Type != clientv3.EventTypeDelete {
			cur = m.decode(key, ev.Kv.Value, ev.Kv.ModRevision)
		}
		changes = append(changes, change{cur: cur}) // old is read under the lock below
	}
	m.mu.Lock()
	for i, ev := range wr.Events {
		key := string(ev.Kv.Key)
		changes[i].old = m.items[key]
		if changes[i].cur != nil {
			m.items[key] = changes[i].cur
		} else {
			delete(m.items, key)
		}
	}
	m.mu.Unlock()
	if m.onChange != nil {
		for _, c := range changes {
			m.onChange(c.old, c.cur)
		}
	}
}

// ready reports whether the first full read is done.
func (m *mirror[M]) ready() bool {
	select {
	case <-m.synced:
		return true
	default:
		return false
	}
}

// get returns the entry of key, or nil.
func (m *mirror[M]) get(key string) *entry[M] {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.items[key]
}

// list returns the entries whose key starts with prefix (unordered).
func (m *mirror[M]) list(prefix string) []*entry[M] {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*entry[M], 0, len(m.items))
	for k, e := range m.items {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, e)
		}
	}
	return out
}
