package crypt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// TenantOf names the tenant that owns key (ok false: no tenant owns it, and
// the key is never encrypted).
type TenantOf func(key string) (tenant uint64, ok bool)

// KeyFor returns a tenant's KEK reference, "" when the tenant writes
// plaintext. An error fails the write. ctx is the write's.
type KeyFor func(ctx context.Context, tenant uint64) (kekRef string, err error)

// LayoutTenant is the fleet's TenantOf: the tenant of a key in its
// committed data pool folder, its sorter snapshots or its schema history.
// Data change buffer files are the upstream's and pass through, and so do
// the metering records (usage/): they are the operator's, and must outlive
// a crypto-shredded tenant for its last bill.
func LayoutTenant(key string) (uint64, bool) {
	p, tenant, ok := layout.Classify(key)
	if !ok || p.IsBuffer() || p == layout.PurposePoolUsage {
		return 0, false
	}
	return tenant, true
}

type tenantKEKKey struct{ tenant uint64 }

// WithTenantKEK returns ctx telling a Store which KEK tenant's objects
// written with it use, ahead of KeyFor: registering a tenant writes its
// first pool objects before the record KeyFor reads exists.
func WithTenantKEK(ctx context.Context, tenant uint64, kekRef string) context.Context {
	return context.WithValue(ctx, tenantKEKKey{tenant}, kekRef)
}

// TenantKEKFrom returns the KEK WithTenantKEK put in ctx for tenant.
func TenantKEKFrom(ctx context.Context, tenant uint64) (string, bool) {
	ref, ok := ctx.Value(tenantKEKKey{tenant}).(string)
	return ref, ok
}

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	// ChunkSize is the plaintext bytes per chunk (DefaultChunkSize).
	ChunkSize int
	// KeyTTL is how long a data key is used without asking the KMS: a
	// writer's current data key per KEK, an unwrapped data key, a cached
	// object header. A disabled KEK stops reads and writes within KeyTTL
	// (default 5 minutes).
	KeyTTL time.Duration
	// DataKeys bounds the unwrapped data keys cached (default 1024).
	DataKeys int
	// Headers bounds the object headers cached for ranged reads (default
	// 8192).
	Headers int
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.KeyTTL <= 0 {
		o.KeyTTL = 5 * time.Minute
	}
	if o.DataKeys <= 0 {
		o.DataKeys = 1024
	}
	if o.Headers <= 0 {
		o.Headers = 8192
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is an objstore.Store that encrypts the objects of tenants with a
// KEK reference and decrypts envelopes on read.
type Store struct {
	inner    objstore.Store
	kms      KMS
	keyFor   KeyFor
	tenantOf TenantOf
	opts     Options
	// writeKeys: the data key new objects under a KEK use, by reference.
	writeKeys *cache[dataKey]
	// readKeys: unwrapped data keys, by reference and wrapped key.
	readKeys *cache[[]byte]
	// headers: what GetRange knows of an object, by object key (a nil
	// sealer: the object was plaintext).
	headers *cache[*sealer]
	// scratch: buffers of ciphertext (envelopes being written, chunks
	// read by GetRangeInto), recycled.
	scratch scratchBufs
}

type dataKey struct {
	dek, wrapped []byte
}

var (
	_ objstore.Store           = (*Store)(nil)
	_ objstore.PartsPutter     = (*Store)(nil)
	_ objstore.RangeIntoGetter = (*Store)(nil)
)

// Wrap returns inner encrypting for the tenants keyFor gives a reference.
func Wrap(inner objstore.Store, kms KMS, keyFor KeyFor, tenantOf TenantOf, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if opts.ChunkSize < minChunkSize || opts.ChunkSize > maxChunkSize {
		return nil, fmt.Errorf("crypt: chunk size %d is outside [%d, %d]", opts.ChunkSize, minChunkSize, maxChunkSize)
	}
	if kms == nil || keyFor == nil || tenantOf == nil {
		return nil, errors.New("crypt: Wrap needs a KMS, a KeyFor and a TenantOf")
	}
	return &Store{inner: inner, kms: kms, keyFor: keyFor, tenantOf: tenantOf, opts: opts,
		writeKeys: newCache[dataKey](256, opts.KeyTTL, opts.Now),
		readKeys:  newCache[[]byte](opts.DataKeys, opts.KeyTTL, opts.Now),
		headers:   newCache[*sealer](opts.Headers, opts.KeyTTL, opts.Now),
	}, nil
}

// String implements objstore.Store.
func (s *Store) String() string { return s.inner.String() }

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, [][]byte{data}, false)
}

// PutIfAbsent implements objstore.Store.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, [][]byte{data}, true)
}

// PutParts implements objstore.PartsPutter: a plaintext object goes on in
// parts; an encrypted one is sealed from the parts into one envelope (the
// ciphertext is new memory in any case), which goes on whole.
func (s *Store) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return s.put(ctx, key, parts, false)
}

// PutIfAbsentParts implements objstore.PartsPutter, as PutParts.
func (s *Store) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return s.put(ctx, key, parts, true)
}

func (s *Store) put(ctx context.Context, key string, parts [][]byte, ifAbsent bool) error {
	if err := objstore.ValidateKey(key); err != nil {
		return err
	}
	put := objstore.PutParts
	if ifAbsent {
		put = objstore.PutIfAbsentParts
	}
	tenant, ok := s.tenantOf(key)
	if !ok {
		return put(ctx, s.inner, key, parts...)
	}
	ref, ok := TenantKEKFrom(ctx, tenant)
	var err error
	if !ok {
		ref, err = s.keyFor(ctx, tenant)
	}
	if err != nil {
		return fmt.Errorf("tenant %d: key reference for %q: %w", tenant, key, err)
	}
	if ref == "" {
		s.headers.remove(key)
		return put(ctx, s.inner, key, parts...)
	}
	sl, err := s.newObject(ctx, tenant, ref, key, int64(objstore.PartsLen(parts)))
	if err != nil {
		return err
	}
	// The envelope is built in a recycled buffer: a store keeps nothing a
	// caller passes to a put after it returns (objstore.Store).
	env := s.scratch.take(int(sl.h.objectLen()))
	err = put(ctx, s.inner, key, sl.seal(env[:0], parts))
	s.scratch.put(env)
	if err != nil {
		if !errors.Is(err, objstore.ErrExists) {
			s.headers.remove(key) // a failed put may or may not have landed
		}
		return err
	}
	s.headers.put(key, sl)
	return nil
}

// newObject makes the header and sealer of a new object of plainLen bytes.
func (s *Store) newObject(ctx context.Context, tenant uint64, ref, key string, plainLen int64) (*sealer, error) {
	dk, err := s.writeKeys.getOrLoad(ref, func() (dataKey, error) {
		dek := make([]byte, DataKeyLen)
		if _, err := rand.Read(dek); err != nil {
			return dataKey{}, err
		}
		wrapped, err := s.kms.WrapKey(ctx, ref, dek)
		if err != nil {
			return dataKey{}, err
		}
		s.readKeys.put(readKeyID(ref, wrapped), dek)
		return dataKey{dek: dek, wrapped: wrapped}, nil
	})
	if err != nil {
		return nil, &KeyError{Op: "seal", Tenant: tenant, HasTenant: true, Ref: ref, Key: key, Err: err}
	}
	h := &header{chunkSize: int64(s.opts.ChunkSize), plainLen: plainLen, ref: ref, wrapped: dk.wrapped}
	if len(ref) > maxRefLen || len(dk.wrapped) > maxWrappedLen {
		return nil, &KeyError{Op: "seal", Tenant: tenant, HasTenant: true, Ref: ref, Key: key,
			Err: fmt.Errorf("%w: a %d-byte reference or a %d-byte wrapped key is over the limit (%d, %d)", ErrBadRef, len(ref), len(dk.wrapped), maxRefLen, maxWrappedLen)}
	}
	if _, err := rand.Read(h.salt[:]); err != nil {
		return nil, err
	}
	h.encode()
	return newSealer(dk.dek, h, key)
}

func readKeyID(ref string, wrapped []byte) string { return ref + "\x00" + string(wrapped) }

// sealerFor unwraps h's data key (cached) and returns the object's sealer.
func (s *Store) sealerFor(ctx context.Context, tenant uint64, key string, h *header) (*sealer, error) {
	dek, err := s.readKeys.getOrLoad(readKeyID(h.ref, h.wrapped), func() ([]byte, error) {
		return s.kms.UnwrapKey(ctx, h.ref, h.wrapped)
	})
	if err != nil {
		return nil, &KeyError{Op: "open", Tenant: tenant, HasTenant: true, Ref: h.ref, Key: key, Err: err}
	}
	return newSealer(dek, h, key)
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	tenant, ok := s.tenantOf(key)
	if !ok {
		return s.inner.Get(ctx, key)
	}
	b, err := s.inner.Get(ctx, key)
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			s.headers.remove(key)
		}
		return nil, err
	}
	if !isEnvelope(b) {
		return b, nil // written before the tenant turned encryption on
	}
	keyErr := func(ref string, err error) error {
		return &KeyError{Op: "open", Tenant: tenant, HasTenant: true, Ref: ref, Key: key, Err: err}
	}
	h, need, err := decodeHeader(b)
	if err == nil && need > len(b) {
		err = fmt.Errorf("%w: the %d-byte object ends inside its %d-byte header", ErrCorrupt, len(b), need)
	}
	if err != nil {
		return nil, keyErr("", err)
	}
	if int64(len(b)) != h.objectLen() {
		return nil, keyErr(h.ref, fmt.Errorf("%w: object has %d bytes, its header says %d", ErrCorrupt, len(b), h.objectLen()))
	}
	sl, err := s.sealerFor(ctx, tenant, key, h)
	if err != nil {
		return nil, err
	}
	out, err := sl.open(make([]byte, 0, h.plainLen), b[len(h.raw):], 0)
	if err != nil {
		return nil, keyErr(h.ref, err)
	}
	s.headers.put(key, sl)
	return out, nil
}

// List implements objstore.Store. Sizes are those of the stored objects:
// an encrypted object's is its envelope's, larger than its plaintext.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	return s.inner.List(ctx, prefix, startAfter, limit)
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.headers.remove(key)
	return s.inner.Delete(ctx, key)
}
