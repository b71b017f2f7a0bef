// Package auth decides who may call what. A caller is identified by its
// TLS client certificate (fleet members, operators, upstream producers,
// readers) or by a signed bearer token (readers and operators of the public
// API); a table names, for every gRPC method, the roles that may call it and
// whether its tenant must be one the caller holds. Every refusal is audited
// in the log with the identity and counted.
package auth

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Role is what a caller is to TiStream.
type Role string

// The roles. Fleet members call each other's internal APIs; an upstream
// producer registers its tenant and notifies its store files; a reader pulls
// its tenants' streams; an admin operates the fleet and reads everything.
const (
	RoleMetaServer     Role = "meta-server"
	RoleDispatcher     Role = "dispatcher"
	RoleSorter         Role = "sorter"
	RoleSchemaRegistry Role = "schema-registry"
	RoleAPIServer      Role = "api-server"
	RoleUpstream       Role = "upstream"
	RoleReader         Role = "reader"
	RoleAdmin          Role = "admin"
)

var knownRoles = []Role{RoleMetaServer, RoleDispatcher, RoleSorter, RoleSchemaRegistry, RoleAPIServer,
	RoleUpstream, RoleReader, RoleAdmin}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(knownRoles, r) {
		return "", fmt.Errorf("unknown role %q", s)
	}
	return r, nil
}

// Identity is an authenticated caller.
type Identity struct {
	Role Role
	Name string // certificate name or token subject, for the audit log
	// Tenants the caller may act on; nil with AllTenants for fleet members
	// and admins.
	Tenants    []uint64
	AllTenants bool
	Via        string // "cert" or "token"
	// ForwardedBy names the meta-server that forwarded the call to its
	// leader on this caller's behalf ("" = the caller called directly).
	ForwardedBy string
}

// CanActOn reports whether the identity holds tenant.
func (id Identity) CanActOn(tenant uint64) bool {
	return id.AllTenants || slices.Contains(id.Tenants, tenant)
}

func (id Identity) String() string {
	t := "all tenants"
	if !id.AllTenants {
		parts := make([]string, len(id.Tenants))
		for i, x := range id.Tenants {
			parts[i] = strconv.FormatUint(x, 10)
		}
		t = "tenants " + strings.Join(parts, ",")
	}
	if id.ForwardedBy != "" {
		return fmt.Sprintf("%s %q (%s, %s, forwarded by meta-server %q)", id.Role, id.Name, t, id.Via, id.ForwardedBy)
	}
	return fmt.Sprintf("%s %q (%s, %s)", id.Role, id.Name, t, id.Via)
}

// FromCertificate reads the identity a certificate names in its URI SAN
// (tlsx.IdentityURI):
//
//	spiffe://tistream/<role>/<name>              a fleet member, upstream or admin
//	spiffe://tistream/reader/<tenant>[,<tenant>]/<name>  a reader of those tenants
//	spiffe://tistream/upstream/<tenant>/<name>   an upstream of one tenant
//
// Fleet members and admins act on every tenant; an upstream certificate
// without a tenant too (a producer serving several tenants).
func FromCertificate(c *x509.Certificate) (Identity, error) {
	for _, u := range c.URIs {
		if u.Scheme != "spiffe" || u.Host != "tistream" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		role, err := ParseRole(parts[0])
		if err != nil {
			return Identity{}, fmt.Errorf("certificate %q: %w", c.Subject.CommonName, err)
		}
		id := Identity{Role: role, Via: "cert", AllTenants: true}
		switch {
		case role == RoleReader || (role == RoleUpstream && len(parts) == 3):
			if len(parts) != 3 {
				return Identity{}, fmt.Errorf("certificate %q: a %s certificate names spiffe://tistream/%s/<tenants>/<name>", c.Subject.CommonName, role, role)
			}
			if id.Tenants, err = parseTenants(parts[1]); err != nil {
				return Identity{}, fmt.Errorf("certificate %q: %w", c.Subject.CommonName, err)
			}
			id.AllTenants, id.Name = false, parts[2]
		case len(parts) == 2:
			id.Name = parts[1]
		default:
			return Identity{}, fmt.Errorf("certificate %q: identity %s: want spiffe://tistream/<role>/<name>", c.Subject.CommonName, u)
		}
		return id, nil
	}
	return Identity{}, fmt.Errorf("certificate %q names no TiStream identity (a spiffe://tistream/... URI SAN)", c.Subject.CommonName)
}

func parseTenants(s string) ([]uint64, error) {
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		t, err := strconv.ParseUint(p, 10, 64)
		if err != nil || t == 0 {
			return nil, fmt.Errorf("tenant %q is not a tenant id", p)
		}
		out = append(out, t)
	}
	return out, nil
}
