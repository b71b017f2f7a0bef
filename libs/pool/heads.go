package pool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tistream/tistream/libs/objstore"
)

// Heads is what the sorters' publication notices (etcdx.Notice) say of each
// group: the newest publication seq its writer announced, and when. A
// reader polling for a group's next publication asks it first (through
// ReadOptions.Heads): a seq above a fresh announcement is not written yet,
// or its notice is on the way, so the reader treats it as "not found"
// without a GET — the one that would, after every publication, find
// nothing. Positioning reads (which must see everything that exists) never
// ask it.
//
// What is announced always exists (a sorter puts the notice after the
// publication is written), so believing it can only delay a reader, never
// make it miss a row: a publication that exists above the announced seq —
// a notice lost or still in flight, a FENCE whose notice was lost (a new
// owner announces the FENCE it writes into the old group), a writer
// without etcd — is found once the announcement is older
// than the freshness bound (the reader's fallback poll interval), or at
// once after Reset. The follower of the notices calls Announce for each
// named notice and Reset whenever its watch ends (notices may then be
// missed).
//
// A Heads is safe for concurrent use; a nil *Heads knows nothing.
type Heads struct {
	fresh time.Duration
	now   func() time.Time

	mu     sync.Mutex
	m      map[headKey]head
	pruned time.Time

	skipped atomic.Int64
}

type headKey struct {
	tenant uint64
	group  string
}

type head struct {
	seq uint64
	at  time.Time // when a notice last named seq (or the group at all)
}

// NewHeads returns an empty Heads whose announcements are believed for
// fresh after they arrive; now is the clock (time.Now when nil).
func NewHeads(fresh time.Duration, now func() time.Time) *Heads {
	if now == nil {
		now = time.Now
	}
	return &Heads{fresh: fresh, now: now, m: map[headKey]head{}}
}

// Announce records a notice: seq is the newest publication of group. A seq
// below what is known (not sent by a writer; kept for safety) refreshes
// nothing.
func (h *Heads) Announce(tenant uint64, group string, seq uint64) {
	if h == nil || seq == 0 {
		return
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	k := headKey{tenant, group}
	if old, ok := h.m[k]; ok && old.seq > seq {
		return
	}
	h.m[k] = head{seq: seq, at: now}
	if now.Sub(h.pruned) >= h.fresh {
		// Stale entries tell nothing: drop them (groups retire; ids are
		// never reused), so the map holds about the groups announced in
		// the last two freshness intervals.
		h.pruned = now
		for k, v := range h.m {
			if now.Sub(v.at) >= h.fresh {
				delete(h.m, k)
			}
		}
	}
}

// Reset forgets every announcement (the notices' watch ended).
func (h *Heads) Reset() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.m)
}

// Newest returns the newest seq of the group a fresh notice announced (ok
// false when none is believed).
func (h *Heads) Newest(tenant uint64, group string) (seq uint64, ok bool) {
	if h == nil {
		return 0, false
	}
	h.mu.Lock()
	v, ok := h.m[headKey{tenant, group}]
	h.mu.Unlock()
	if !ok || h.now().Sub(v.at) >= h.fresh {
		return 0, false
	}
	return v.seq, true
}

// Skipped counts the polls answered "not yet" without a GET.
func (h *Heads) Skipped() int64 {
	if h == nil {
		return 0
	}
	return h.skipped.Load()
}

// notYet returns an error matching objstore.ErrNotFound when a fresh
// announcement says seq of the group is not written yet (nil when nothing
// says so), and counts it.
func (h *Heads) notYet(tenant uint64, group string, seq uint64) error {
	if newest, ok := h.Newest(tenant, group); !ok || seq <= newest {
		return nil
	}
	h.skipped.Add(1)
	return errNotAnnounced
}

// errNotAnnounced answers a poll for a publication above the newest
// announced one.
var errNotAnnounced = fmt.Errorf("publication not announced yet: %w", objstore.ErrNotFound)
