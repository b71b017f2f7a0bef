package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/metadata"
)

// ForwardedIdentityKey is the gRPC metadata a meta-server standby sends
// when it forwards a call to the leader: the identity it verified for the
// original caller (certificate or bearer token), JSON-encoded
// (docs/security.md, "Forwarded calls"). The "-bin" suffix makes gRPC
// carry it base64-encoded, so any name survives.
//
// The guard believes it only from a peer that authenticated with a
// meta-server certificate; from anyone else the call is refused. Then the
// forwarded identity, not the meta-server's, is authorized by the policy,
// so a call through a standby is allowed exactly when it would be allowed
// directly.
const ForwardedIdentityKey = "tistream-forwarded-identity-bin"

// forwardedVersion is the encoding's version; a value of another version
// is refused (a leader older than its standbys refuses, it does not guess).
const forwardedVersion = 1

// Bounds of a forwarded identity, checked when decoding.
const (
	maxForwardedBytes   = 16 << 10
	maxForwardedName    = 1024
	maxForwardedTenants = 1024
)

// forwarded is the encoding of ForwardedIdentityKey.
type forwarded struct {
	V          int      `json:"v"`
	Role       Role     `json:"role"`
	Name       string   `json:"name"`
	Tenants    []uint64 `json:"tenants,omitempty"`
	AllTenants bool     `json:"all_tenants,omitempty"`
	Via        string   `json:"via"`
}

// EncodeForwarded is id's ForwardedIdentityKey value.
func EncodeForwarded(id Identity) ([]byte, error) {
	f := forwarded{V: forwardedVersion, Role: id.Role, Name: id.Name, Tenants: id.Tenants, AllTenants: id.AllTenants, Via: id.Via}
	if f.AllTenants {
		f.Tenants = nil // an admin token may list tenants; all of them is what counts
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if _, err := DecodeForwarded(b); err != nil {
		return nil, fmt.Errorf("identity %s cannot be forwarded: %w", id, err)
	}
	return b, nil
}

// DecodeForwarded reads and checks a ForwardedIdentityKey value. A fleet
// member's role is refused: a forwarded call is always an outside
// caller's (upstream, reader, admin), since meta-servers forward the
// identity they received, never their own.
func DecodeForwarded(b []byte) (Identity, error) {
	if len(b) > maxForwardedBytes {
		return Identity{}, fmt.Errorf("forwarded identity: %d bytes, more than %d", len(b), maxForwardedBytes)
	}
	var f forwarded
	if err := json.Unmarshal(b, &f); err != nil {
		return Identity{}, fmt.Errorf("forwarded identity: %w", err)
	}
	if f.V != forwardedVersion {
		return Identity{}, fmt.Errorf("forwarded identity: version %d, want %d", f.V, forwardedVersion)
	}
	role, err := ParseRole(string(f.Role))
	if err != nil {
		return Identity{}, fmt.Errorf("forwarded identity: %w", err)
	}
	switch role {
	case RoleUpstream, RoleReader, RoleAdmin:
	default:
		return Identity{}, fmt.Errorf("forwarded identity: role %s is a fleet member's, never forwarded", role)
	}
	if f.Via != "cert" && f.Via != "token" {
		return Identity{}, fmt.Errorf("forwarded identity: via %q, want cert or token", f.Via)
	}
	if len(f.Name) > maxForwardedName {
		return Identity{}, fmt.Errorf("forwarded identity: name of %d bytes, more than %d", len(f.Name), maxForwardedName)
	}
	if len(f.Tenants) > maxForwardedTenants {
		return Identity{}, fmt.Errorf("forwarded identity: %d tenants, more than %d", len(f.Tenants), maxForwardedTenants)
	}
	for _, t := range f.Tenants {
		if t == 0 {
			return Identity{}, errors.New("forwarded identity: tenant 0 is not a tenant id")
		}
	}
	if f.AllTenants == (len(f.Tenants) > 0) {
		return Identity{}, errors.New("forwarded identity: names either all tenants or a list of tenants, exactly one")
	}
	if f.AllTenants && role != RoleAdmin && role != RoleUpstream {
		return Identity{}, fmt.Errorf("forwarded identity: a %s holds a list of tenants, not all", role)
	}
	return Identity{Role: role, Name: f.Name, Tenants: f.Tenants, AllTenants: f.AllTenants, Via: f.Via}, nil
}

// WithForwarded returns ctx with id added to its outgoing metadata as
// ForwardedIdentityKey, for a meta-server forwarding a call.
func WithForwarded(ctx context.Context, id Identity) (context.Context, error) {
	b, err := EncodeForwarded(id)
	if err != nil {
		return ctx, err
	}
	return metadata.AppendToOutgoingContext(ctx, ForwardedIdentityKey, string(b)), nil
}

// forwardedIdentity applies ForwardedIdentityKey to a call whose peer
// authenticated as peer: no such metadata, the peer itself; from a
// meta-server's certificate, the identity it forwards; from anyone else,
// an error.
func forwardedIdentity(md metadata.MD, peer Identity) (Identity, error) {
	vals := md.Get(ForwardedIdentityKey)
	if len(vals) == 0 {
		return peer, nil
	}
	if peer.Role != RoleMetaServer || peer.Via != "cert" {
		return Identity{}, fmt.Errorf("%s sent a forwarded identity; only a meta-server's certificate may", peer)
	}
	if len(vals) != 1 {
		return Identity{}, fmt.Errorf("%d forwarded identities in one call, want 1", len(vals))
	}
	id, err := DecodeForwarded([]byte(vals[0]))
	if err != nil {
		return Identity{}, err
	}
	id.ForwardedBy = peer.Name
	return id, nil
}
