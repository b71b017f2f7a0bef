package dispatcher

import (
	"slices"
	"sync"
)

// noticeLimit bounds the notified files a stream remembers ahead of the
// files it read: a stream further behind reads the files past them by
// listing, as without notifications.
const noticeLimit = 256

// notices is what a stream was told of its store files (Notify, the stream
// task's latest_seq/latest_max_ts) and what it read, by seq above its
// checkpoint. A file's key is {prefix}{seq}-{max_ts}: a notified max_ts
// lets the stream GET the file without listing its seq (issue 12: on S3 a
// LIST costs 12.5 GETs, and at a 250 ms store flush the LIST of every file
// was half the buffer's requests).
//
// A GET of one key cannot see a second object under the same seq, which the
// listing's duplicate check (pickDuplicate) did. So two notifications of one
// seq naming different max_ts make the stream list that seq before reading
// it; when it had read the seq already (and the checkpoint has not passed
// it), the stream lists it at once (rechecks) and stops at it as before if
// the objects differ. docs/bad-input.md says what a direct read does not see.
//
// Safe for concurrent use (Notify and the stream's loop).
type notices struct {
	mu     sync.Mutex
	latest uint64            // highest seq notified
	floor  uint64            // the checkpoint last trimmed to: nothing at or below it is kept
	files  map[uint64]notice // seq -> what is known of its file
	ahead  int               // entries not read (bounded by noticeLimit)
	check  map[uint64]bool   // read seqs a later notification named otherwise
}

// notice is what is known of one seq's file.
type notice struct {
	maxTs uint64 // notified (or, once read, the read key's) max_ts
	read  bool   // the stream read and routed the file under maxTs
	list  bool   // a listing must look at this seq before it is read (again)
	live  bool   // named by a Notify call (not only by the stream task)
}

func newNotices() *notices {
	return &notices{files: map[uint64]notice{}, check: map[uint64]bool{}}
}

// note records a notification of file seq cut at maxTs (0: unknown, the
// seq alone is recorded); live: a Notify call (the store wrote the file
// just now), not the stream task's latest file (written by the meta-server
// at most once per its flush interval, and stale after an outage). wake:
// the stream should look now (the seq is newer than any before, or a file
// read needs a recheck); conflict: the seq was known under another max_ts.
func (n *notices) note(seq, maxTs uint64, live bool) (wake, conflict bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if seq > n.latest {
		n.latest, wake = seq, true
	}
	if maxTs == 0 || seq <= n.floor {
		return wake, false // a file at or below the checkpoint is never read again
	}
	f, ok := n.files[seq]
	switch {
	case !ok:
		if n.ahead < noticeLimit {
			n.files[seq] = notice{maxTs: maxTs, live: live}
			n.ahead++
		}
	case f.maxTs != maxTs:
		conflict = true
		f.list = true
		n.files[seq] = f
		if f.read {
			n.check[seq] = true
			wake = true
		}
	case live && !f.live:
		f.live = true
		n.files[seq] = f
	}
	return wake, conflict
}

// heard reports whether a notification named seq or a later file.
func (n *notices) heard(seq uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return seq <= n.latest
}

// live reports whether a Notify call named file seq with its max_ts: the
// store notifies each file once written, so the next one will be named
// too.
func (n *notices) live(seq uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.files[seq]
	return ok && f.live
}

// key returns the max_ts to GET file seq under, when it was notified and
// no listing is needed first.
func (n *notices) key(seq uint64) (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.files[seq]
	if !ok || f.list {
		return 0, false
	}
	return f.maxTs, true
}

// readAs records that file seq was read and routed under maxTs; listed
// says a listing of the seq came first (it checked for duplicates).
func (n *notices) readAs(seq, maxTs uint64, listed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if seq <= n.floor {
		return
	}
	f, ok := n.files[seq]
	if ok && !f.read {
		n.ahead--
	}
	if ok && f.read && f.maxTs == maxTs && !listed {
		return
	}
	if listed {
		f.list = false
	}
	f.maxTs, f.read = maxTs, true
	n.files[seq] = f
}

// readTs is the max_ts file seq was read under (false: not read).
func (n *notices) readTs(seq uint64) (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.files[seq]
	return f.maxTs, ok && f.read
}

// mustList makes the next read of seq list it first.
func (n *notices) mustList(seq uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if seq <= n.floor {
		return
	}
	f, ok := n.files[seq]
	if !ok {
		n.ahead++
	}
	f.list = true
	n.files[seq] = f
}

// rechecks returns the read seqs to list again, ascending.
func (n *notices) rechecks() []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.check) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(n.check))
	for seq := range n.check {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}

// rechecked records that seq was listed again; clean says the listing
// found nothing against the file read (a stop keeps the seq listed first).
func (n *notices) rechecked(seq uint64, clean bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.check, seq)
	if f, ok := n.files[seq]; ok && clean {
		f.list = false
		n.files[seq] = f
	}
}

// trim forgets every seq at or below the checkpoint ckpt.
func (n *notices) trim(ckpt uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ckpt <= n.floor {
		return
	}
	n.floor = ckpt
	for seq, f := range n.files {
		if seq <= ckpt {
			if !f.read {
				n.ahead--
			}
			delete(n.files, seq)
		}
	}
	for seq := range n.check {
		if seq <= ckpt {
			delete(n.check, seq)
		}
	}
}

// notify records a notification of file seq cut at maxTs (live: Notify;
// else a stream task's latest file) and wakes the stream when it is news.
func (st *stream) notify(seq, maxTs uint64, live bool) {
	wake, conflict := st.notes.note(seq, maxTs, live)
	if conflict {
		st.log.Warn("a notification names another file than the one known for its seq: the stream lists the seq",
			"seq", seq, "max_ts", maxTs)
	}
	if wake {
		st.wake()
	}
}
