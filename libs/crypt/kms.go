package crypt

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors a KMS and the wrapper return wrapped with the key and, in the
// wrapper, the tenant they concern; test them with errors.Is.
var (
	// ErrKeyDisabled: the KEK exists but is disabled, revoked or pending
	// deletion; nothing may be wrapped or unwrapped with it.
	ErrKeyDisabled = errors.New("key disabled")
	// ErrKeyNotFound: no such KEK (or no such version of it).
	ErrKeyNotFound = errors.New("key not found")
	// ErrAuth: authentication failed: a wrapped key or an object was
	// sealed under another key, for another object, or changed since.
	ErrAuth = errors.New("authentication failed")
	// ErrCorrupt: an envelope or a wrapped key is malformed.
	ErrCorrupt = errors.New("corrupt envelope")
	// ErrBadRef: a key reference that no configured KMS serves.
	ErrBadRef = errors.New("invalid key reference")
)

// DataKeyLen is the length of a data key: an AES-256 key.
const DataKeyLen = 32

// KMS wraps and unwraps data keys with key-encryption keys that never leave
// it. kekRef is the whole reference ("local:NAME", "aws-kms:ID"); a wrapped
// key carries what the KMS needs to unwrap it (e.g. the KEK version), so
// rotating a KEK leaves older wrapped keys readable. Implementations are
// safe for concurrent use.
type KMS interface {
	WrapKey(ctx context.Context, kekRef string, dek []byte) (wrapped []byte, err error)
	UnwrapKey(ctx context.Context, kekRef string, wrapped []byte) (dek []byte, err error)
}

// KeyError is a KMS or envelope failure with what it concerns: the tenant
// (when known), the KEK reference and the object key. Unwrap gives the
// cause, so errors.Is(err, ErrKeyDisabled) works through it.
type KeyError struct {
	Op        string // "wrap", "unwrap", "seal", "open"
	Tenant    uint64
	HasTenant bool
	Ref       string // KEK reference, "" if not known yet
	Key       string // object key, "" for a KMS call
	Err       error
}

func (e *KeyError) Error() string {
	var b strings.Builder
	if e.HasTenant {
		b.WriteString("tenant " + strconv.FormatUint(e.Tenant, 10) + ": ")
	}
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteString(" object " + strconv.Quote(e.Key))
	}
	if e.Ref != "" {
		b.WriteString(" with key " + e.Ref)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *KeyError) Unwrap() error { return e.Err }

// Router is a KMS that passes each reference to the KMS serving its scheme
// (the part before the first ':'), e.g. {"local": local, "aws-kms": aws}.
type Router map[string]KMS

var _ KMS = Router(nil)

func (r Router) route(kekRef string) (KMS, error) {
	scheme, rest, ok := strings.Cut(kekRef, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("%w %q: want SCHEME:KEY, e.g. local:NAME or aws-kms:KEY-ID", ErrBadRef, kekRef)
	}
	k, ok := r[scheme]
	if !ok || k == nil {
		return nil, fmt.Errorf("%w %q: no %s KMS is configured", ErrBadRef, kekRef, scheme)
	}
	return k, nil
}

// WrapKey implements KMS.
func (r Router) WrapKey(ctx context.Context, kekRef string, dek []byte) ([]byte, error) {
	k, err := r.route(kekRef)
	if err != nil {
		return nil, err
	}
	return k.WrapKey(ctx, kekRef, dek)
}

// UnwrapKey implements KMS.
func (r Router) UnwrapKey(ctx context.Context, kekRef string, wrapped []byte) ([]byte, error) {
	k, err := r.route(kekRef)
	if err != nil {
		return nil, err
	}
	return k.UnwrapKey(ctx, kekRef, wrapped)
}

// refName returns what follows "scheme:" in ref, or ErrBadRef.
func refName(scheme, ref string) (string, error) {
	name, ok := strings.CutPrefix(ref, scheme+":")
	if !ok || name == "" {
		return "", fmt.Errorf("%w %q: want %s:NAME", ErrBadRef, ref, scheme)
	}
	return name, nil
}
