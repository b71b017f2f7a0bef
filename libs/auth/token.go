package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bearer tokens are JWTs (RFC 7519) signed with Ed25519 (alg EdDSA) or
// ECDSA (ES256/ES384): the api-server (and the meta-server, for admins)
// verify them with public keys only, so no server holds a secret that mints
// tokens. github.com/golang-jwt/jwt/v5 does the parsing and the signature
// and time checks (already in the module graph through etcd; JWT parsing
// is a place for a well-reviewed library, not for code of our own).
//
// Claims: sub (who, for the audit log), aud must contain "tistream", exp is
// required, and two of TiStream's: role ("reader", "upstream" or "admin")
// and tenants (the tenant ids a reader or upstream acts on; an admin acts
// on all).

// Audience is the aud every TiStream token carries.
const Audience = "tistream"

// Claims are a token's claims.
type Claims struct {
	Role    string   `json:"role"`
	Tenants []uint64 `json:"tenants,omitempty"`
	jwt.RegisteredClaims
}

// maxTokenBytes bounds a token read from a request header.
const maxTokenBytes = 8 << 10

// Verifier checks tokens against the public keys of a PEM file, re-read
// when it changes (key rotation: put the new key in the file next to the old
// one, then retire the old one).
type Verifier struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	keys    []crypto.PublicKey
	stamp   string
	checked time.Time
}

// NewVerifier loads the keys of path (PEM "PUBLIC KEY" blocks, Ed25519 or
// ECDSA).
func NewVerifier(path string) (*Verifier, error) {
	v := &Verifier{path: path, now: time.Now}
	if err := v.load(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Verifier) load() error {
	fi, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	stamp := fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
	v.mu.Lock()
	same := stamp == v.stamp
	v.mu.Unlock()
	if same {
		return nil
	}
	data, err := os.ReadFile(v.path)
	if err != nil {
		return fmt.Errorf("token keys: %w", err)
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return fmt.Errorf("token keys %s: %w", v.path, err)
	}
	v.mu.Lock()
	v.keys, v.stamp = keys, stamp
	v.mu.Unlock()
	return nil
}

// ParsePublicKeys reads every PEM "PUBLIC KEY" of data.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		switch k.(type) {
		case ed25519.PublicKey, *ecdsa.PublicKey:
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("a %T public key: use Ed25519 or ECDSA", k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no PUBLIC KEY block")
	}
	return keys, nil
}

// Verify checks a token and returns the identity it names.
func (v *Verifier) Verify(token string) (Identity, error) {
	if len(token) > maxTokenBytes {
		return Identity{}, fmt.Errorf("token of %d bytes (at most %d)", len(token), maxTokenBytes)
	}
	v.mu.Lock()
	due := v.now().Sub(v.checked) >= 2*time.Second
	if due {
		v.checked = v.now()
	}
	v.mu.Unlock()
	if due {
		_ = v.load() // a broken file keeps the keys in use
	}
	v.mu.Lock()
	keys := v.keys
	v.mu.Unlock()
	var lastErr error
	for _, k := range keys {
		c := &Claims{}
		_, err := jwt.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) { return k, nil },
			jwt.WithValidMethods([]string{"EdDSA", "ES256", "ES384"}), jwt.WithAudience(Audience),
			jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now), jwt.WithLeeway(30*time.Second))
		if err == nil {
			return c.identity()
		}
		lastErr = err
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break // a bad token, not the wrong key
		}
	}
	return Identity{}, lastErr
}

func (c *Claims) identity() (Identity, error) {
	role, err := ParseRole(c.Role)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Role: role, Name: c.Subject, Tenants: c.Tenants, Via: "token"}
	switch role {
	case RoleAdmin:
		id.AllTenants = true
	case RoleReader, RoleUpstream:
		if len(c.Tenants) == 0 {
			return Identity{}, fmt.Errorf("a %s token names no tenants", role)
		}
	default:
		return Identity{}, fmt.Errorf("role %s is for fleet members' certificates, not tokens", role)
	}
	return id, nil
}

// Sign makes a token (for `tistream token` and tests).
func Sign(key crypto.Signer, claims Claims) (string, error) {
	var method jwt.SigningMethod
	switch k := key.Public().(type) {
	case ed25519.PublicKey:
		method = jwt.SigningMethodEdDSA
	case *ecdsa.PublicKey:
		method = jwt.SigningMethodES256
		if k.Curve.Params().BitSize == 384 {
			method = jwt.SigningMethodES384
		}
	default:
		return "", fmt.Errorf("a %T key cannot sign TiStream tokens", k)
	}
	if len(claims.Audience) == 0 {
		claims.Audience = jwt.ClaimStrings{Audience}
	}
	return jwt.NewWithClaims(method, claims).SignedString(key)
}
