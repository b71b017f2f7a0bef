package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tistream/tistream/libs/crypt"
	"github.com/tistream/tistream/libs/etcdx"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/tenantcfg"
	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// encryptionConfig turns on customer-managed keys (docs/formats/encryption.md):
// the KMSes a tenant's kek_ref may name. With neither set, nothing is
// encrypted or decrypted and the pool is used as it is.
type encryptionConfig struct {
	// KeyDir serves local:NAME references (DIR/NAME.key).
	KeyDir string `yaml:"key_dir"`
	// AWSRegion or AWSEndpoint serves aws-kms:ID references (credentials
	// from the AWS default chain).
	AWSRegion   string `yaml:"aws_kms_region"`
	AWSEndpoint string `yaml:"aws_kms_endpoint"`
	// KeyCacheTTL bounds how long data keys and headers are used without
	// asking the KMS: a disabled key stops the tenant within it (0 = 5m).
	KeyCacheTTL time.Duration `yaml:"key_cache_ttl"`
}

func (c *encryptionConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.KeyDir, "key-dir", c.KeyDir, "directory of local key files for tenants' kek_ref local:NAME (customer-managed keys; docs/formats/encryption.md)")
	fs.StringVar(&c.AWSRegion, "aws-kms-region", c.AWSRegion, "AWS KMS region for tenants' kek_ref aws-kms:ID")
	fs.StringVar(&c.AWSEndpoint, "aws-kms-endpoint", c.AWSEndpoint, "AWS KMS endpoint override (a KMS-compatible server)")
	fs.DurationVar(&c.KeyCacheTTL, "key-cache-ttl", c.KeyCacheTTL, "how long data keys are used without asking the KMS: a disabled key stops its tenant within it (0 = 5m)")
}

func (c encryptionConfig) enabled() bool {
	return c.KeyDir != "" || c.AWSRegion != "" || c.AWSEndpoint != ""
}

// encryptPool wraps e.pool (already metered, so the request counts and
// bytes are what goes over the wire: ciphertext) in crypt.Store, with each
// tenant's key from its etcd record, and the data change buffers (e.buffer
// and every tenant's own, e.wrapBuffer) in crypt.WrapBuffer: buffer files
// an upstream sealed are opened, plaintext ones pass through, nothing is
// sealed. It returns what stops the watcher.
//
// Without a KMS configured the pool is not wrapped (a cold ranged read of a
// plaintext object would cost a header probe), but a write for a tenant
// that has a kek_ref is refused: its objects are never stored in plaintext
// because this one service was started without --key-dir. A sealed buffer
// file is then refused with an error naming the tenant and the key
// (crypt.NoKMS).
func encryptPool(ctx context.Context, e *env, c encryptionConfig, defaults tenantcfg.Defaults) (func(), error) {
	if !c.enabled() {
		if defaults.KEKRef != "" {
			return nil, fmt.Errorf("--tenant-default-kek %s needs a KMS: --key-dir for local: keys, --aws-kms-region/--aws-kms-endpoint for aws-kms: keys", defaults.KEKRef)
		}
		if err := e.wrapBuffers(func(s objstore.Store) (objstore.Store, error) {
			return &crypt.NoKMS{Store: s, TenantOf: crypt.BufferTenant}, nil
		}); err != nil {
			return nil, err
		}
		if e.pool == nil {
			return func() {}, nil
		}
		keys, stop, err := watchKeys(ctx, e, defaults)
		if err != nil {
			return nil, err
		}
		e.pool = &noKMSGuard{Store: e.pool, keys: keys}
		return stop, nil
	}
	router, err := c.kms(ctx)
	if err != nil {
		return nil, err
	}
	opts := crypt.Options{KeyTTL: c.KeyCacheTTL}
	if err := e.wrapBuffers(func(s objstore.Store) (objstore.Store, error) { return crypt.WrapBuffer(s, router, opts) }); err != nil {
		return nil, err
	}
	if e.pool == nil {
		return func() {}, nil
	}
	keys, cancel, err := watchKeys(ctx, e, defaults)
	if err != nil {
		return nil, err
	}
	pool, err := crypt.Wrap(e.pool, router, keys.keyFor, crypt.LayoutTenant, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	e.pool = pool
	return cancel, nil
}

// kms is the KMS of every scheme configured: local: from KeyDir, aws-kms:
// from the AWS settings.
func (c encryptionConfig) kms(ctx context.Context) (crypt.Router, error) {
	router := crypt.Router{}
	if c.KeyDir != "" {
		local, err := crypt.NewLocalKMS(c.KeyDir)
		if err != nil {
			return nil, fmt.Errorf("--key-dir: %w", err)
		}
		router[crypt.LocalScheme] = local
	}
	if c.AWSRegion != "" || c.AWSEndpoint != "" {
		aws, err := crypt.NewAWSKMS(ctx, crypt.AWSConfig{Region: c.AWSRegion, Endpoint: c.AWSEndpoint})
		if err != nil {
			return nil, err
		}
		router[crypt.AWSScheme] = aws
	}
	return router, nil
}

// wrapBuffers wraps the service's buffer and, through e.wrapBuffer, every
// tenant's own buffer store (outside the metering: counts stay the
// ciphertext's).
func (e *env) wrapBuffers(wrap func(objstore.Store) (objstore.Store, error)) error {
	if e.buffer == nil {
		return nil
	}
	b, err := wrap(e.buffer)
	if err != nil {
		return err
	}
	e.buffer = b
	inner := e.wrapBuffer
	e.wrapBuffer = func(s objstore.Store) objstore.Store {
		if inner != nil {
			s = inner(s)
		}
		// The same wrap succeeded on e.buffer: it fails only for options
		// and KMSes, which are the same here.
		w, err := wrap(s)
		if err != nil {
			return &crypt.NoKMS{Store: s, TenantOf: crypt.BufferTenant}
		}
		return w
	}
	return nil
}

// watchKeys follows the tenants' key references in etcd.
func watchKeys(ctx context.Context, e *env, defaults tenantcfg.Defaults) (*tenantKeys, func(), error) {
	w := tenantcfg.NewWatcher(e.etcd, defaults, e.log)
	wctx, cancel := context.WithCancel(context.Background())
	go w.Run(wctx)
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	if err := w.WaitLoaded(lctx); err != nil {
		cancel()
		return nil, nil, err
	}
	return &tenantKeys{w: w, cli: e.etcd, def: defaults, log: e.log}, cancel, nil
}

// noKMSGuard refuses to write a tenant's objects in plaintext when the
// tenant has a key reference and this service has no KMS to use it. Reads
// pass through, into the caller's buffer too (GetRangeInto).
type noKMSGuard struct {
	objstore.Store
	keys *tenantKeys
}

var _ objstore.RangeIntoGetter = (*noKMSGuard)(nil)

// GetRangeInto implements objstore.RangeIntoGetter, passing buf on: the
// pool's readers recycle their read buffers only through a store that
// reads into them.
func (g *noKMSGuard) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	return objstore.GetRangeInto(ctx, g.Store, key, off, buf)
}

func (g *noKMSGuard) check(ctx context.Context, key string) error {
	tenant, ok := crypt.LayoutTenant(key)
	if !ok {
		return nil
	}
	ref, given := crypt.TenantKEKFrom(ctx, tenant)
	if !given {
		var err error
		if ref, err = g.keys.keyFor(ctx, tenant); err != nil {
			return err
		}
	}
	if ref != "" {
		return &crypt.KeyError{Op: "seal", Tenant: tenant, HasTenant: true, Ref: ref, Key: key, Err: fmt.Errorf("%w: this service was started without a KMS (--key-dir, --aws-kms-region)", crypt.ErrKeyNotFound)}
	}
	return nil
}

func (g *noKMSGuard) Put(ctx context.Context, key string, data []byte) error {
	if err := g.check(ctx, key); err != nil {
		return err
	}
	return g.Store.Put(ctx, key, data)
}

func (g *noKMSGuard) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := g.check(ctx, key); err != nil {
		return err
	}
	return g.Store.PutIfAbsent(ctx, key, data)
}

// PutParts and PutIfAbsentParts pass objects written in parts (the
// sorters' group publications) on in parts.
func (g *noKMSGuard) PutParts(ctx context.Context, key string, parts [][]byte) error {
	if err := g.check(ctx, key); err != nil {
		return err
	}
	return objstore.PutParts(ctx, g.Store, key, parts...)
}

func (g *noKMSGuard) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	if err := g.check(ctx, key); err != nil {
		return err
	}
	return objstore.PutIfAbsentParts(ctx, g.Store, key, parts...)
}

// tenantKeys gives a tenant's kek_ref: from the watcher, or, for a tenant
// it has not seen yet (registered a moment ago), from the tenant's record
// itself, so a new tenant's first objects are never written in plaintext
// by a watcher that lags. An etcd failure fails the write.
type tenantKeys struct {
	w   *tenantcfg.Watcher
	cli *clientv3.Client
	def tenantcfg.Defaults
	log *slog.Logger
}

func (k *tenantKeys) keyFor(ctx context.Context, tenant uint64) (string, error) {
	if e, ok := k.w.Get(tenant); ok {
		return e.KEKRef, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info := &metav1.TenantInfo{}
	found, _, err := etcdx.GetProto(ctx, k.cli, etcdx.TenantKey(tenant), info)
	if err != nil {
		return "", fmt.Errorf("tenant %d's key reference: %w", tenant, err)
	}
	if !found {
		return k.def.KEKRef, nil
	}
	return tenantcfg.Resolve(info, k.def).KEKRef, nil
}
