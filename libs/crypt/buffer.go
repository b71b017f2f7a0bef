package crypt

import (
	"context"
	"fmt"
	"strings"

	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
)

// Data change buffer files the upstream encrypts (docs/formats/encryption.md,
// "Buffer files"). The upstream may seal its store change files and schema
// snapshots in the envelope under its tenant's key; the fleet only reads
// and deletes buffer files, so its buffer stores decrypt (WrapBuffer) and
// never encrypt, and plaintext files pass through as they are.

// BufferTenant is the TenantOf of data change buffer files: the tenant of
// a key under data_change_buffer/cluster-C/tenant-T/.
func BufferTenant(key string) (uint64, bool) {
	p, tenant, ok := layout.Classify(key)
	return tenant, ok && p.IsBuffer()
}

// noKey is the KeyFor of a store that never encrypts.
func noKey(context.Context, uint64) (string, error) { return "", nil }

// WrapBuffer returns inner (a data change buffer) opening the envelopes
// its tenants' upstreams wrote with the key each envelope names; a write
// is stored as it is given (never sealed). Ranged reads of envelopes
// (storefile.ReadHeader) work as Store.GetRange does.
func WrapBuffer(inner objstore.Store, kms KMS, opts Options) (*Store, error) {
	return Wrap(inner, kms, noKey, BufferTenant, opts)
}

// SealBuffer returns inner sealing every buffer file of every tenant with
// kekRef, as an upstream that encrypts its files does (tistream sim
// --encrypt-buffer-kek); reads open them.
func SealBuffer(inner objstore.Store, kms KMS, kekRef string, opts Options) (*Store, error) {
	if _, rest, ok := strings.Cut(kekRef, ":"); !ok || rest == "" {
		return nil, fmt.Errorf("%w %q: want SCHEME:KEY, e.g. local:NAME or aws-kms:KEY-ID", ErrBadRef, kekRef)
	}
	return Wrap(inner, kms, func(context.Context, uint64) (string, error) { return kekRef, nil }, BufferTenant, opts)
}

// NoKMS is a store of a service without a KMS (no --key-dir, no AWS KMS):
// a read of an object of a tenant (per TenantOf) that is an envelope fails
// with a KeyError naming the tenant, the object and the key it names,
// matching ErrKeyNotFound, instead of handing the ciphertext to a decoder
// that would call it corrupt. Only reads from the object's start are
// checked (a whole read, a ranged read from 0: how every reader of a file
// starts); everything else passes through.
type NoKMS struct {
	objstore.Store
	TenantOf TenantOf
}

func (s *NoKMS) check(key string, b []byte) error {
	if !isEnvelope(b) {
		return nil
	}
	tenant, ok := s.TenantOf(key)
	if !ok {
		return nil
	}
	ref := ""
	if h, need, err := decodeHeader(b); err == nil && need <= len(b) {
		ref = h.ref
	}
	return &KeyError{Op: "open", Tenant: tenant, HasTenant: true, Ref: ref, Key: key,
		Err: fmt.Errorf("%w: the object is encrypted and this service was started without a KMS (--key-dir, --aws-kms-region)", ErrKeyNotFound)}
}

// Get implements objstore.Store.
func (s *NoKMS) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := s.check(key, b); err != nil {
		return nil, err
	}
	return b, nil
}

// GetRange implements objstore.Store.
func (s *NoKMS) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := s.Store.GetRange(ctx, key, off, n)
	return s.checkFromStart(key, off, b, err)
}

// GetRangeInto implements objstore.RangeIntoGetter, passing buf on.
func (s *NoKMS) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	b, err := objstore.GetRangeInto(ctx, s.Store, key, off, buf)
	return s.checkFromStart(key, off, b, err)
}

// checkFromStart checks a ranged read's bytes when they are the object's
// first.
func (s *NoKMS) checkFromStart(key string, off int64, b []byte, err error) ([]byte, error) {
	if err != nil || off != 0 {
		return b, err
	}
	if err := s.check(key, b); err != nil {
		return nil, err
	}
	return b, nil
}

// PutParts implements objstore.PartsPutter: writes pass through.
func (s *NoKMS) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return objstore.PutParts(ctx, s.Store, key, parts...)
}

// PutIfAbsentParts implements objstore.PartsPutter: writes pass through.
func (s *NoKMS) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return objstore.PutIfAbsentParts(ctx, s.Store, key, parts...)
}
