package dispatcher

import (
	"context"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantbuf"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// A stream reads its tenant's data change buffer (tenantbuf): the
// service's --buffer, or the tenant's own buffer_url. It resolves it at the
// start of every run; after a change of the tenant's buffer setting it
// resolves it again at its next use.

const (
	// reasonBuffer: the tenant's buffer could not be opened (a run restart
	// reason).
	reasonBuffer = "buffer"
	// blockBuffer: the stream is blocked because its tenant's buffer cannot
	// be opened (tistream_dispatcher_stream_blocked).
	blockBuffer = "buffer_unavailable"
)

// streamBuffer is the store a stream resolved.
type streamBuffer struct{ objstore.Store }

// resolveBuffer resolves the tenant's buffer for a run that starts at file
// next. A buffer that cannot be opened blocks the stream until it can.
func (st *stream) resolveBuffer(ctx context.Context, next uint64) error {
	b, err := st.s.buffers.For(ctx, st.tenant)
	if err != nil {
		if ctx.Err() == nil {
			st.block(blockBuffer, next, "", err)
		}
		return err
	}
	st.buf.Store(&streamBuffer{b})
	if st.blockedState().reason == blockBuffer {
		st.unblock(0, true)
	}
	return nil
}

// buffer returns the store the stream resolved; before its first run, or
// after a change of its tenant's buffer setting, it resolves it now (a
// buffer that cannot be opened answers every call with why).
func (st *stream) buffer() objstore.Store {
	if b := st.buf.Load(); b != nil {
		return b.Store
	}
	b, err := st.s.buffers.For(st.ctx, st.tenant)
	if err != nil {
		return failingStore{err: err}
	}
	st.buf.CompareAndSwap(nil, &streamBuffer{b})
	return b
}

// bufferChanged forgets the resolved store of every stream of the tenant,
// so the next use resolves the new setting.
func (s *Service) bufferChanged(e tenantcfg.Effective, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.streams {
		if k.tenant == e.Tenant {
			st.buf.Store(nil)
		}
	}
}

// followBuffers makes the service resolve tenants' buffers with r (nil: a
// resolver of the default buffer alone) following the tenants' settings.
func (s *Service) followBuffers(r *tenantbuf.Resolver, def objstore.Store, w *tenantcfg.Watcher) {
	if r == nil {
		r = tenantbuf.New(tenantbuf.Options{Default: def, Log: s.log})
	}
	s.buffers = r
	r.Follow(w)
	w.OnChange(s.bufferChanged)
}

// failingStore is a buffer that cannot be opened: every call fails with
// the reason.
type failingStore struct{ err error }

func (f failingStore) Put(context.Context, string, []byte) error         { return f.err }
func (f failingStore) PutIfAbsent(context.Context, string, []byte) error { return f.err }
func (f failingStore) Get(context.Context, string) ([]byte, error)       { return nil, f.err }
func (f failingStore) GetRange(context.Context, string, int64, int64) ([]byte, error) {
	return nil, f.err
}
func (f failingStore) List(context.Context, string, string, int) ([]objstore.ObjectInfo, bool, error) {
	return nil, false, f.err
}
func (f failingStore) Delete(context.Context, string) error { return f.err }
func (f failingStore) String() string                       { return "(unavailable data change buffer)" }
