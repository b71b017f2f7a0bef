package dispatcher

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// How a routed store file's bytes were found: the how label of
// tistream_dispatcher_store_file_reads_total.
const (
	readNotified = "notified" // one GET of the notified key, no LIST
	readListed   = "listed"   // a LIST of its seq, then a GET
	readFallback = "fallback" // the notified key was not found: a GET, a LIST, a GET
	readReplay   = "replay"   // from the replay cache: no request
)

// fetched is a store file as found, or (empty key) where it is missing.
type fetched struct {
	cachedFile
	how   string
	later uint64 // missing: the seq of the first later file (a gap), or 0
}

// listed reports whether a listing of the file's seq came first, which
// checked it for a second object under the seq.
func (f fetched) listed() bool { return f.how == readListed || f.how == readFallback }

// fetch finds file seq: in the replay cache; else with one GET when it was
// notified with its max_ts (notices); else, or when that key is not found
// (a notification that raced a rename or delete, or named a file never
// written), by listing its seq as without notifications (nextFile, and
// pickDuplicate when the listing holds several objects).
func (st *stream) fetch(ctx context.Context, seq uint64) (fetched, error) {
	if cf, ok := st.replay.get(seq); ok {
		st.sm.replayHits.Inc()
		return fetched{cachedFile: cf, how: readReplay}, nil
	}
	how := readListed
	if maxTs, ok := st.notes.key(seq); ok {
		key := layout.StoreFileKey(st.cluster, st.tenant, st.store, seq, maxTs)
		data, err := st.buffer().Get(ctx, key)
		if err == nil {
			return fetched{cachedFile: cachedFile{key: key, data: data}, how: readNotified}, nil
		}
		if !errors.Is(err, objstore.ErrNotFound) {
			return fetched{}, fmt.Errorf("read store file: %w", err)
		}
		how = readFallback
		st.notes.mustList(seq) // later polls list it, without the GET
	}
	ls, err := st.nextFile(ctx, seq)
	if err != nil {
		return fetched{}, err
	}
	f := fetched{how: how, later: ls.later}
	switch len(ls.keys) {
	case 0:
		return f, nil
	case 1:
		f.key = ls.keys[0]
		if f.data, err = st.buffer().Get(ctx, f.key); err != nil {
			return fetched{}, fmt.Errorf("read store file: %w", err)
		}
	default:
		if f.key, f.data, err = st.pickDuplicate(ctx, seq, ls.keys); err != nil {
			return fetched{}, err
		}
	}
	return f, nil
}

// recheck lists again each file the stream read whose seq a later
// notification named with another max_ts (notices): a second object under
// the seq, which a GET of one key does not see. Objects that differ stop the
// stream at the seq as a listing before the read would have: the run ends
// without letting the window settle (the file and those after it were sent
// already: their acknowledgements must not move the checkpoint past it),
// and the next run lists the seq when it reaches it and blocks there
// (duplicate_conflict). A seq the checkpoint passed is left alone, as an
// upload behind the checkpoint is (docs/bad-input.md, 3c).
func (st *stream) recheck(r *runState) (string, error) {
	for _, seq := range st.notes.rechecks() {
		if seq <= st.checkpointSeq() {
			st.notes.rechecked(seq, true)
			continue
		}
		st.sm.rechecks.Inc()
		ls, err := st.nextFile(r.ctx, seq)
		if err != nil {
			return reasonStorage, err
		}
		if len(ls.keys) > 1 {
			if _, _, err := st.pickDuplicate(r.ctx, seq, ls.keys); err != nil {
				var bad *badFileError
				if !errors.As(err, &bad) {
					return reasonStorage, err
				}
				read := ""
				if maxTs, ok := st.notes.readTs(seq); ok {
					read = layout.StoreFileKey(st.cluster, st.tenant, st.store, seq, maxTs)
				}
				st.notes.rechecked(seq, false)
				st.sm.decodeErrors.Inc()
				st.log.Error("a second, different object under a store file seq already read: the stream stops at the seq; "+
					"the file read went to the sorters, keep it and delete the other",
					"seq", seq, "read", read, "objects", ls.keys)
				return reasonDecode, err
			}
		}
		st.notes.rechecked(seq, true)
	}
	return "", nil
}
