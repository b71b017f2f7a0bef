package tenantbuf_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/metered"
	"github.com/tistream/tistream/libs/tenantbuf"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// settings is a tenant settings table the test changes.
type settings struct {
	mu sync.Mutex
	m  map[uint64]tenantcfg.Effective
}

func (s *settings) get(t uint64) tenantcfg.Effective {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[t]; ok {
		return e
	}
	return tenantcfg.Effective{Tenant: t}
}

func (s *settings) set(e tenantcfg.Effective) {
	s.mu.Lock()
	s.m[e.Tenant] = e
	s.mu.Unlock()
}

// opens records every store the resolver opens, through the real
// objstore.OpenProfile.
type opens struct {
	mu    sync.Mutex
	calls []string // url|credsFile|profile
}

func (o *opens) open(ctx context.Context, u, creds, profile string) (objstore.Store, error) {
	o.mu.Lock()
	o.calls = append(o.calls, u+"|"+creds+"|"+profile)
	o.mu.Unlock()
	return objstore.OpenProfile(ctx, u, creds, profile)
}

func fileURL(t *testing.T, name string) (string, string) {
	dir := filepath.Join(t.TempDir(), name)
	return "file://" + dir, dir
}

func TestResolver(t *testing.T) {
	ctx := context.Background()
	def := objstore.NewMemory()
	reg := prometheus.NewRegistry()
	meter := metered.NewMetrics(reg)
	op := &opens{}
	r := tenantbuf.New(tenantbuf.Options{Default: def, CredentialsFile: "/fleet/credentials", Open: op.open,
		Wrap: func(s objstore.Store) objstore.Store { return meter.Wrap(s, "dispatcher", layout.Labels) }})
	set := &settings{m: map[uint64]tenantcfg.Effective{}}

	// Without settings every tenant has the default buffer.
	got, err := r.For(ctx, 1)
	require.NoError(t, err)
	require.Same(t, def, got)
	r.SetSettings(set.get)

	url2, dir2 := fileURL(t, "tenant2")
	url3, _ := fileURL(t, "tenant3")
	set.set(tenantcfg.Effective{Tenant: 2, BufferURL: url2})
	set.set(tenantcfg.Effective{Tenant: 3, BufferURL: url3})
	set.set(tenantcfg.Effective{Tenant: 4, BufferURL: url2})

	t.Run("default", func(t *testing.T) {
		got, err := r.For(ctx, 1)
		require.NoError(t, err)
		require.Same(t, def, got)
	})
	t.Run("own URL, one store per URL, metered like the service's buffer", func(t *testing.T) {
		s2, err := r.For(ctx, 2)
		require.NoError(t, err)
		key := layout.StoreFileKey(9, 2, 1, 1, 100)
		require.NoError(t, s2.Put(ctx, key, []byte("file")))
		// It is in tenant 2's directory, not in the default buffer.
		direct, err := objstore.Open(ctx, "file://"+dir2)
		require.NoError(t, err)
		b, err := direct.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, "file", string(b))
		_, err = def.Get(ctx, key)
		require.ErrorIs(t, err, objstore.ErrNotFound)

		s4, err := r.For(ctx, 4)
		require.NoError(t, err)
		require.Same(t, s2, s4, "one store per (URL, credentials_ref)")
		s3, err := r.For(ctx, 3)
		require.NoError(t, err)
		require.NotSame(t, s2, s3)
		require.Equal(t, 2, r.Stores())

		requests, _, err := metered.Gather(reg)
		require.NoError(t, err)
		var puts float64
		for _, s := range requests {
			if s.Service == "dispatcher" && s.Tenant == "2" && s.Kind == "put" && s.Purpose == string(layout.PurposeStoreFile) {
				puts += s.Value
			}
		}
		require.Equal(t, 1.0, puts, "%+v", requests)
	})
	t.Run("credentials_ref is a profile of the fleet's credentials file", func(t *testing.T) {
		set.set(tenantcfg.Effective{Tenant: 5, BufferURL: "s3://b5/p?endpoint=http://127.0.0.1:1", CredentialsRef: "tenant-5"})
		op.mu.Lock()
		op.calls = nil
		op.mu.Unlock()
		_, err := r.For(ctx, 5) // no such server: the error is the open's
		require.Error(t, err)
		op.mu.Lock()
		require.Equal(t, []string{"s3://b5/p?endpoint=http://127.0.0.1:1|/fleet/credentials|tenant-5"}, op.calls)
		op.mu.Unlock()
		// A file:// buffer takes no credentials: the ref is passed and ignored.
		set.set(tenantcfg.Effective{Tenant: 5, BufferURL: url3, CredentialsRef: "tenant-5"})
		_, err = r.For(ctx, 5)
		require.NoError(t, err)
	})
	t.Run("a changed setting is resolved again; the unused store is dropped", func(t *testing.T) {
		before := r.Stores()
		url2b, dir2b := fileURL(t, "tenant2b")
		e := tenantcfg.Effective{Tenant: 2, BufferURL: url2b, Generation: 2}
		set.set(e)
		r.Changed(e, true)
		s2, err := r.For(ctx, 2)
		require.NoError(t, err)
		require.NoError(t, s2.Put(ctx, "k", []byte("v")))
		direct, err := objstore.Open(ctx, "file://"+dir2b)
		require.NoError(t, err)
		_, err = direct.Get(ctx, "k")
		require.NoError(t, err)
		// Tenant 4 still names url2: it stays.
		require.Equal(t, before+1, r.Stores())
		e4 := tenantcfg.Effective{Tenant: 4}
		set.set(e4)
		r.Changed(e4, true)
		require.Equal(t, before, r.Stores(), "url2 is no one's now")
		got, err := r.For(ctx, 4)
		require.NoError(t, err)
		require.Same(t, def, got)
		r.Changed(tenantcfg.Effective{Tenant: 3}, false) // deleted
		require.Equal(t, before-1, r.Stores(), "url3 without a ref was tenant 3's alone (tenant 5 names it with a ref: another store)")
	})
	t.Run("a buffer that cannot be opened: an error naming the tenant, the URL and the reason; others unaffected", func(t *testing.T) {
		set.set(tenantcfg.Effective{Tenant: 6, BufferURL: "s3://b6/p?endpoint=http://127.0.0.1:1&nonsense=1"})
		_, err := r.For(ctx, 6)
		require.Error(t, err)
		require.True(t, tenantbuf.IsOpenError(err))
		require.ErrorContains(t, err, "tenant 6: its data change buffer s3://b6/p?endpoint=http://127.0.0.1:1&nonsense=1 cannot be opened")
		require.ErrorContains(t, err, `unknown parameter "nonsense"`)
		set.set(tenantcfg.Effective{Tenant: 7, CredentialsRef: "x", BufferURL: "s3://b7?endpoint=http://127.0.0.1:1"})
		noFile := tenantbuf.New(tenantbuf.Options{Default: def})
		noFile.SetSettings(set.get)
		_, err = noFile.For(ctx, 7)
		require.ErrorContains(t, err, `tenant 7: its data change buffer s3://b7?endpoint=http://127.0.0.1:1 cannot be opened: credentials_ref "x": the service has no credentials file`)
		_, err = r.For(ctx, 1)
		require.NoError(t, err)
		_, err = r.For(ctx, 2)
		require.NoError(t, err)
	})
}

// Follow takes the settings from a Watcher and its changes.
func TestResolverFollowsWatcher(t *testing.T) {
	ctx := context.Background()
	url9, _ := fileURL(t, "t9")
	w := tenantcfg.Static(tenantcfg.Defaults{}, &metav1.TenantInfo{TenantId: 9, Settings: &metav1.TenantSettings{BufferUrl: proto.String(url9)}})
	def := objstore.NewMemory()
	r := tenantbuf.New(tenantbuf.Options{Default: def})
	r.Follow(w)
	s9, err := r.For(ctx, 9)
	require.NoError(t, err)
	require.NotSame(t, def, s9)
	require.Equal(t, "file://"+filepath.Join(filepath.Dir(url9[len("file://"):]), "t9"), s9.String())
	got, err := r.For(ctx, 10)
	require.NoError(t, err)
	require.Same(t, def, got)
	// A cancelled wait is the caller's error, named like the others.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	release := make(chan struct{})
	defer close(release)
	slow := tenantbuf.New(tenantbuf.Options{Default: def, Open: func(context.Context, string, string, string) (objstore.Store, error) {
		<-release
		return objstore.NewMemory(), nil
	}})
	slow.SetSettings(func(uint64) tenantcfg.Effective { return tenantcfg.Effective{Tenant: 11, BufferURL: "mem://"} })
	_, err = slow.For(cctx, 11)
	require.True(t, errors.Is(err, context.Canceled))
	require.ErrorContains(t, err, "tenant 11")
}
