package dispatcher

import (
	"time"

	"github.com/tistream/tistream/libs/route"
)

// await blocks until one of a, b or t fires (nil ones never do) or the
// tenant's routing changes without requiring a restart, and returns ("",
// nil) then; it returns the reason and error when the run must end instead.
func (st *stream) await(r *runState, a, b <-chan struct{}, t <-chan time.Time) (string, error) {
	st.mu.Lock()
	changed := st.snap.changed
	st.mu.Unlock()
	select {
	case <-a:
	case <-b:
	case <-t:
	case <-r.ctx.Done():
		return reasonStopped, r.ctx.Err()
	case <-r.failed:
		return r.reason(), r.err()
	case <-changed:
		if st.adopt() {
			return reasonRouting, errRoutingChanged
		}
	}
	return "", nil
}

// waitTable waits until the tenant's ranges tile the key space and makes
// that snapshot the run's.
func (st *stream) waitTable(r *runState) (*route.Table, string, error) {
	for {
		snap := st.s.routes.current(st.tenant)
		if snap.table != nil {
			st.mu.Lock()
			st.snap = snap
			st.dropUnroutedLocked()
			st.mu.Unlock()
			return snap.table, "", nil
		}
		select {
		case <-snap.changed:
		case <-st.drain:
			return nil, reasonDrained, errDrained
		case <-r.ctx.Done():
			return nil, reasonStopped, r.ctx.Err()
		}
	}
}

// waitSpace waits until the window has room for another file. While
// draining it instead waits for the window to empty and ends the run. A
// recheck of files read (notices) is made at once, window full or not.
func (st *stream) waitSpace(r *runState) (string, error) {
	for {
		if reason, err := st.recheck(r); err != nil {
			return reason, err
		}
		if st.draining() {
			if st.windowLen() == 0 {
				return reasonDrained, errDrained
			}
			if reason, err := st.await(r, st.spaceCh, nil, nil); err != nil {
				return reason, err
			}
			continue
		}
		if st.windowLen() < st.s.cfg.MaxInFlight {
			return "", nil
		}
		if reason, err := st.await(r, st.spaceCh, st.drain, nil); err != nil {
			return reason, err
		}
	}
}

// waitFile waits for a notification (wake) or the poll timer before the
// stream looks for its next file again; polled says the timer fired.
func (st *stream) waitFile(r *runState) (polled bool, reason string, err error) {
	timer := time.NewTimer(st.s.cfg.PollInterval)
	reason, err = st.await(r, st.wakeCh, st.drain, timer.C)
	return !timer.Stop(), reason, err
}

// drainWake drops a pending wake: the stream is about to look anyway.
func (st *stream) drainWake() {
	select {
	case <-st.wakeCh:
	default:
	}
}
