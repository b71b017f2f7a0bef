// Package tenantbuf gives each tenant's data change buffer: the service's
// own (--buffer) for a tenant whose effective buffer_url is "", else the
// store its buffer_url names, signed with the credentials its
// credentials_ref names (a profile of the fleet's AWS shared credentials
// file). Stores are opened once per (URL, credentials_ref), metered like
// the service's own buffer, and dropped when no tenant names them any more.
// docs/tenants.md ("Settings").
package tenantbuf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantcfg"
)

// OpenFunc opens the store rawURL names with the credentials of profile in
// the credentials file credsFile ("" = the URL's own credentials).
type OpenFunc func(ctx context.Context, rawURL, credsFile, profile string) (objstore.Store, error)

// Options configure a Resolver.
type Options struct {
	// Default is the service's own buffer (--buffer): tenants without a
	// buffer_url of their own use it. Required.
	Default objstore.Store
	// CredentialsFile is the fleet's AWS shared credentials file
	// (--tenant-credentials-file): credentials_ref names a profile in it.
	CredentialsFile string
	// Wrap wraps every store opened for a tenant, as the service wraps its
	// own buffer (metered.Metrics.Wrap with the same service and labels);
	// nil = no wrapping.
	Wrap func(objstore.Store) objstore.Store
	// Open opens a tenant's store; nil = objstore.OpenProfile.
	Open OpenFunc
	Log  *slog.Logger
}

// Resolver resolves tenants' buffers. Safe for concurrent use.
type Resolver struct {
	o        Options
	mu       sync.Mutex
	settings func(tenant uint64) tenantcfg.Effective
	stores   map[storeKey]*entry
	byTenant map[uint64]storeKey // the store each tenant resolved last
}

// storeKey names one opened store.
type storeKey struct{ url, ref string }

// entry is one store being opened or open; ready is closed once st or err
// is set.
type entry struct {
	ready chan struct{}
	st    objstore.Store
	err   error
}

// New returns a resolver whose tenants all use the default buffer until
// it is given their settings (Follow, SetSettings).
func New(o Options) *Resolver {
	if o.Open == nil {
		o.Open = objstore.OpenProfile
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{o: o, stores: map[storeKey]*entry{}, byTenant: map[uint64]storeKey{}}
}

// Default returns the service's own buffer.
func (r *Resolver) Default() objstore.Store { return r.o.Default }

// SetSettings gives the resolver each tenant's effective settings (a
// Watcher's Settings, the meta-server's mirror). Call it before For.
func (r *Resolver) SetSettings(fn func(tenant uint64) tenantcfg.Effective) {
	r.mu.Lock()
	r.settings = fn
	r.mu.Unlock()
}

// Follow takes the tenants' settings from w and drops a tenant's store as
// soon as its settings name another one (or the tenant is deleted). Call it
// before w runs.
func (r *Resolver) Follow(w *tenantcfg.Watcher) {
	r.SetSettings(w.Settings)
	w.OnChange(r.Changed)
}

// Changed is told a tenant's new settings (tenantcfg.Watcher.OnChange): a
// store no tenant names any more is closed and dropped. The next For opens
// the new one.
func (r *Resolver) Changed(e tenantcfg.Effective, exists bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.byTenant[e.Tenant]
	if !had || (exists && old == keyOf(e)) {
		return
	}
	delete(r.byTenant, e.Tenant)
	r.o.Log.Info("tenant's data change buffer setting changed; resolving it again", "tenant", e.Tenant,
		"buffer", redact(e.BufferURL), "credentials_ref", e.CredentialsRef, "generation", e.Generation)
	r.dropUnusedLocked(old)
}

// For returns the tenant's buffer per its current settings.
func (r *Resolver) For(ctx context.Context, tenant uint64) (objstore.Store, error) {
	r.mu.Lock()
	fn := r.settings
	r.mu.Unlock()
	if fn == nil {
		return r.o.Default, nil
	}
	return r.Open(ctx, fn(tenant))
}

// Open returns the buffer the settings e name (RegisterTenant resolves the
// settings it is given before the tenant's record exists). The error of a
// store that cannot be opened names the tenant, the URL and the reason; it
// is not cached, so the next call tries again.
func (r *Resolver) Open(ctx context.Context, e tenantcfg.Effective) (objstore.Store, error) {
	k := keyOf(e)
	if k.url == "" {
		r.setTenant(e.Tenant, k)
		return r.o.Default, nil
	}
	r.mu.Lock()
	en, ok := r.stores[k]
	if !ok {
		en = &entry{ready: make(chan struct{})}
		r.stores[k] = en
		go r.open(k, en) // not under ctx: other tenants may wait for it too
	}
	r.mu.Unlock()
	select {
	case <-en.ready:
	case <-ctx.Done():
		return nil, &OpenError{Tenant: e.Tenant, URL: redact(k.url), Err: ctx.Err()}
	}
	if en.err != nil {
		return nil, &OpenError{Tenant: e.Tenant, URL: redact(k.url), Err: en.err}
	}
	r.setTenant(e.Tenant, k)
	return en.st, nil
}

// openTimeout bounds one attempt to open a tenant's store (an S3 store
// checks its bucket, with retries, before it is returned).
const openTimeout = time.Minute

func (r *Resolver) open(k storeKey, en *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	creds := ""
	if k.ref != "" {
		creds = r.o.CredentialsFile
		if creds == "" {
			en.err = fmt.Errorf("credentials_ref %q: the service has no credentials file to look it up in (--tenant-credentials-file)", k.ref)
		}
	}
	if en.err == nil {
		en.st, en.err = r.o.Open(ctx, k.url, creds, k.ref)
	}
	if en.err == nil && r.o.Wrap != nil {
		en.st = r.o.Wrap(en.st)
	}
	r.mu.Lock()
	if en.err != nil && r.stores[k] == en {
		delete(r.stores, k) // tried again by the next For
	}
	r.mu.Unlock()
	if en.err == nil {
		r.o.Log.Info("opened a tenant's data change buffer", "buffer", redact(k.url), "credentials_ref", k.ref)
	}
	close(en.ready)
}

// setTenant records the store a tenant resolved; a store the tenant named
// before and no other tenant names is dropped.
func (r *Resolver) setTenant(tenant uint64, k storeKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.byTenant[tenant]
	if had && old == k {
		return
	}
	r.byTenant[tenant] = k
	if had {
		r.dropUnusedLocked(old)
	}
}

// dropUnusedLocked closes and forgets store k unless a tenant names it.
func (r *Resolver) dropUnusedLocked(k storeKey) {
	if k.url == "" {
		return
	}
	for _, used := range r.byTenant {
		if used == k {
			return
		}
	}
	en, ok := r.stores[k]
	if !ok {
		return
	}
	delete(r.stores, k)
	go func() {
		<-en.ready
		if c, ok := en.st.(io.Closer); ok && en.err == nil {
			_ = c.Close()
		}
	}()
}

// Stores returns how many tenant stores are open or opening (tests).
func (r *Resolver) Stores() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stores)
}

// keyOf is the store the settings name; credentials_ref applies only to a
// tenant's own buffer_url (the service's --buffer has its own credentials).
func keyOf(e tenantcfg.Effective) storeKey {
	if e.BufferURL == "" {
		return storeKey{}
	}
	return storeKey{url: e.BufferURL, ref: e.CredentialsRef}
}

// redact drops user info from a URL for errors and logs (settings refuse
// it, but a URL is never echoed with a secret).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(malformed URL)"
	}
	u.User = nil
	return u.String()
}

// OpenError is a tenant whose buffer cannot be opened: it names the
// tenant, the URL (without user info; settings never hold a secret) and
// the reason.
type OpenError struct {
	Tenant uint64
	URL    string
	Err    error
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("tenant %d: its data change buffer %s cannot be opened: %v", e.Tenant, e.URL, e.Err)
}

func (e *OpenError) Unwrap() error { return e.Err }

// IsOpenError reports whether err is (or wraps) an OpenError.
func IsOpenError(err error) bool {
	var oe *OpenError
	return errors.As(err, &oe)
}
