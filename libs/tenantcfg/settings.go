// Package tenantcfg gives every service the effective settings of each
// tenant: the tenant's own settings (TenantInfo.settings in etcd, written by
// the meta-server leader at RegisterTenant and UpdateTenant) over the
// fleet's defaults (flags and YAML of each service). An unset field of a
// tenant's settings takes the fleet default, so changing a fleet default
// reaches every tenant that did not choose its own (docs/tenants.md).
//
// Services read settings through a Watcher, which follows the tenants'
// records in etcd: a change applies without a restart.
package tenantcfg

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	metav1 "github.com/tistream/tistream/proto/gen/go/tistream/meta/v1"
)

// Quotas bound what one tenant may use; 0 means unlimited.
type Quotas struct {
	IngestRowsPerSec   uint64 `yaml:"ingest_rows_per_sec"`
	IngestBytesPerSec  uint64 `yaml:"ingest_bytes_per_sec"`
	PoolBytes          uint64 `yaml:"pool_bytes"`
	MaxRanges          uint32 `yaml:"max_ranges"`
	MaxConcurrentPulls uint32 `yaml:"max_concurrent_pulls"`
	PullBytesPerSec    uint64 `yaml:"pull_bytes_per_sec"`
}

// Defaults are the fleet's settings for tenants that did not choose their
// own. Every service of a fleet must be given the same values (tistream up
// and the deploy manifests pass one set to all).
type Defaults struct {
	// BufferURL: "" = the service's --buffer.
	BufferURL      string `yaml:"buffer_url"`
	CredentialsRef string `yaml:"credentials_ref"`
	// Retention of committed data after publication; 0 = keep forever.
	Retention time.Duration `yaml:"retention"`
	// KEKRef: "" = tenants' objects are not encrypted.
	KEKRef string `yaml:"kek_ref"`
	Quotas Quotas `yaml:"quotas"`
	// DeregisterGrace: how long a deregistered tenant's data is kept.
	DeregisterGrace time.Duration `yaml:"deregister_grace"`
}

// DefaultDefaults are the defaults of the defaults: no quotas, no
// encryption, the service's own buffer, 24 h retention, 24 h grace.
func DefaultDefaults() Defaults {
	return Defaults{Retention: 24 * time.Hour, DeregisterGrace: 24 * time.Hour}
}

// RegisterFlags adds the fleet-default flags (--tenant-default-*) to fs.
func RegisterFlags(fs *flag.FlagSet, d *Defaults) {
	fs.StringVar(&d.BufferURL, "tenant-default-buffer", d.BufferURL, "data change buffer of tenants without their own (\"\" = --buffer)")
	fs.StringVar(&d.CredentialsRef, "tenant-default-credentials", d.CredentialsRef, "credentials name for tenants' own buffers without one")
	fs.DurationVar(&d.Retention, "tenant-default-retention", d.Retention, "committed data retention of tenants without their own (0 = keep forever)")
	fs.StringVar(&d.KEKRef, "tenant-default-kek", d.KEKRef, "key-encryption key of tenants without their own (\"\" = not encrypted; local:NAME or aws-kms:ID)")
	fs.Uint64Var(&d.Quotas.IngestRowsPerSec, "tenant-default-ingest-rows-per-sec", d.Quotas.IngestRowsPerSec, "ingest quota in row events per second per tenant (0 = unlimited)")
	fs.Uint64Var(&d.Quotas.IngestBytesPerSec, "tenant-default-ingest-bytes-per-sec", d.Quotas.IngestBytesPerSec, "ingest quota in bytes per second per tenant (0 = unlimited)")
	fs.Uint64Var(&d.Quotas.PoolBytes, "tenant-default-pool-bytes", d.Quotas.PoolBytes, "committed data pool bytes per tenant before an alert (0 = unlimited)")
	fs.Func("tenant-default-max-ranges", "ranges per tenant (0 = unlimited)", uint32Flag(&d.Quotas.MaxRanges))
	fs.Func("tenant-default-max-concurrent-pulls", "pulls served at once per tenant (0 = unlimited)", uint32Flag(&d.Quotas.MaxConcurrentPulls))
	fs.Uint64Var(&d.Quotas.PullBytesPerSec, "tenant-default-pull-bytes-per-sec", d.Quotas.PullBytesPerSec, "pull bandwidth per tenant in bytes per second (0 = unlimited)")
	fs.DurationVar(&d.DeregisterGrace, "tenant-default-deregister-grace", d.DeregisterGrace, "how long a deregistered tenant's data is kept before deletion")
}

func uint32Flag(p *uint32) func(string) error {
	return func(s string) error {
		var v uint64
		if _, err := fmt.Sscan(s, &v); err != nil || v > 1<<32-1 {
			return fmt.Errorf("%q is not a number of 0..%d", s, uint32(1<<32-1))
		}
		*p = uint32(v)
		return nil
	}
}

// Validate checks the fleet defaults.
func (d Defaults) Validate() error {
	s := &metav1.TenantSettings{
		BufferUrl: proto.String(d.BufferURL), CredentialsRef: proto.String(d.CredentialsRef),
		RetentionMs: proto.Int64(d.Retention.Milliseconds()), KekRef: proto.String(d.KEKRef),
	}
	if err := Validate(s); err != nil {
		return fmt.Errorf("tenant defaults: %w", err)
	}
	if d.DeregisterGrace < 0 {
		return fmt.Errorf("tenant defaults: deregister grace %v is negative", d.DeregisterGrace)
	}
	return nil
}

// Settings returns the defaults as tenant settings with every field set
// (ListTenants gives them so a client can show effective values).
func (d Defaults) Settings() *metav1.TenantSettings {
	return &metav1.TenantSettings{
		BufferUrl: proto.String(d.BufferURL), CredentialsRef: proto.String(d.CredentialsRef),
		RetentionMs: proto.Int64(d.Retention.Milliseconds()), KekRef: proto.String(d.KEKRef),
		Quotas: &metav1.TenantQuotas{
			IngestRowsPerSec: proto.Uint64(d.Quotas.IngestRowsPerSec), IngestBytesPerSec: proto.Uint64(d.Quotas.IngestBytesPerSec),
			PoolBytes: proto.Uint64(d.Quotas.PoolBytes), MaxRanges: proto.Uint32(d.Quotas.MaxRanges),
			MaxConcurrentPulls: proto.Uint32(d.Quotas.MaxConcurrentPulls), PullBytesPerSec: proto.Uint64(d.Quotas.PullBytesPerSec),
		},
	}
}

// DefaultsOf is the inverse of Defaults.Settings (unset fields read as
// zero), with the deregister grace.
func DefaultsOf(s *metav1.TenantSettings, grace time.Duration) Defaults {
	q := s.GetQuotas()
	return Defaults{BufferURL: s.GetBufferUrl(), CredentialsRef: s.GetCredentialsRef(),
		Retention: time.Duration(s.GetRetentionMs()) * time.Millisecond, KEKRef: s.GetKekRef(),
		Quotas: Quotas{IngestRowsPerSec: q.GetIngestRowsPerSec(), IngestBytesPerSec: q.GetIngestBytesPerSec(),
			PoolBytes: q.GetPoolBytes(), MaxRanges: q.GetMaxRanges(), MaxConcurrentPulls: q.GetMaxConcurrentPulls(),
			PullBytesPerSec: q.GetPullBytesPerSec()},
		DeregisterGrace: grace}
}

// Effective is one tenant's settings with the fleet defaults filled in.
type Effective struct {
	Tenant     uint64
	State      metav1.TenantState
	Generation uint64
	// BufferURL "" = the service's --buffer.
	BufferURL      string
	CredentialsRef string
	Retention      time.Duration
	KEKRef         string
	Quotas         Quotas
	// DeleteAfter: when a deregistered tenant's data may go (zero while
	// active); DeregisteredAt: when it was deregistered.
	DeleteAfter    time.Time
	DeregisteredAt time.Time
}

// Active reports whether the tenant is served: not deregistered.
func (e Effective) Active() bool {
	return e.State == metav1.TenantState_TENANT_STATE_UNSPECIFIED || e.State == metav1.TenantState_TENANT_STATE_ACTIVE
}

// Resolve fills a tenant's unset settings from the fleet defaults.
func Resolve(info *metav1.TenantInfo, d Defaults) Effective {
	s := info.GetSettings()
	if s == nil {
		s = &metav1.TenantSettings{}
	}
	q := s.GetQuotas()
	if q == nil {
		q = &metav1.TenantQuotas{}
	}
	e := Effective{
		Tenant:         info.GetTenantId(),
		State:          info.GetState(),
		Generation:     info.GetSettingsGeneration(),
		BufferURL:      pick(s.BufferUrl, d.BufferURL),
		CredentialsRef: pick(s.CredentialsRef, d.CredentialsRef),
		Retention:      d.Retention,
		KEKRef:         pick(s.KekRef, d.KEKRef),
		Quotas: Quotas{
			IngestRowsPerSec:   pick(q.IngestRowsPerSec, d.Quotas.IngestRowsPerSec),
			IngestBytesPerSec:  pick(q.IngestBytesPerSec, d.Quotas.IngestBytesPerSec),
			PoolBytes:          pick(q.PoolBytes, d.Quotas.PoolBytes),
			MaxRanges:          pick(q.MaxRanges, d.Quotas.MaxRanges),
			MaxConcurrentPulls: pick(q.MaxConcurrentPulls, d.Quotas.MaxConcurrentPulls),
			PullBytesPerSec:    pick(q.PullBytesPerSec, d.Quotas.PullBytesPerSec),
		},
	}
	if s.RetentionMs != nil {
		e.Retention = time.Duration(*s.RetentionMs) * time.Millisecond
	}
	if ms := info.GetDeleteAfterUnixMs(); ms > 0 {
		e.DeleteAfter = time.UnixMilli(ms)
	}
	if ms := info.GetDeregisteredUnixMs(); ms > 0 {
		e.DeregisteredAt = time.UnixMilli(ms)
	}
	return e
}

// NotServed is the message of a refusal because the tenant is not active:
// "tenant N is deregistered since T; its data is deleted after T2" (times
// in UTC, RFC 3339). Services return it with FAILED_PRECONDITION.
func (e Effective) NotServed() string {
	what := "deregistered"
	if e.State == metav1.TenantState_TENANT_STATE_DELETING {
		what = "deregistered (its data is being deleted)"
	}
	return fmt.Sprintf("tenant %d is %s since %s; its data is deleted after %s", e.Tenant, what,
		e.DeregisteredAt.UTC().Format(time.RFC3339), e.DeleteAfter.UTC().Format(time.RFC3339))
}

func pick[T any](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}

// KEK reference schemes (docs/formats/encryption.md).
const (
	KEKLocal  = "local:"
	KEKAWSKMS = "aws-kms:"
)

// Validate checks a tenant's settings as given (unset fields are fine).
func Validate(s *metav1.TenantSettings) error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.BufferUrl != nil && *s.BufferUrl != "" {
		u, err := url.Parse(*s.BufferUrl)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("buffer_url %q: %w", *s.BufferUrl, err))
		case u.Scheme != "s3" && u.Scheme != "file" && u.Scheme != "mem":
			errs = append(errs, fmt.Errorf("buffer_url %q: scheme must be s3, file or mem", *s.BufferUrl))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("buffer_url %q carries credentials: name them with credentials_ref instead", redact(u)))
		}
	}
	if s.CredentialsRef != nil && strings.ContainsAny(*s.CredentialsRef, " \t\n/") {
		errs = append(errs, fmt.Errorf("credentials_ref %q: a name in the fleet's credentials file (no spaces or slashes)", *s.CredentialsRef))
	}
	if s.RetentionMs != nil && *s.RetentionMs < 0 {
		errs = append(errs, fmt.Errorf("retention_ms %d is negative (0 = keep forever)", *s.RetentionMs))
	}
	if s.KekRef != nil && *s.KekRef != "" {
		k := *s.KekRef
		switch {
		case strings.HasPrefix(k, KEKLocal) && len(k) > len(KEKLocal) && !strings.ContainsAny(k[len(KEKLocal):], "/\\ "):
		case strings.HasPrefix(k, KEKAWSKMS) && len(k) > len(KEKAWSKMS):
		default:
			errs = append(errs, fmt.Errorf("kek_ref %q: want %sNAME (a key in the fleet's key directory) or %sKEY-ID-OR-ARN", k, KEKLocal, KEKAWSKMS))
		}
	}
	return errors.Join(errs...)
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Update returns cur with the fields set in upd replaced and the fields
// named in reset (paths such as "retention_ms" or
// "quotas.pull_bytes_per_sec") cleared, so they take the fleet default.
// cur is not modified. An unknown path is an error naming it.
func Update(cur, upd *metav1.TenantSettings, reset []string) (*metav1.TenantSettings, error) {
	out := &metav1.TenantSettings{}
	if cur != nil {
		out = proto.Clone(cur).(*metav1.TenantSettings)
	}
	for _, p := range reset {
		if err := clearPath(out.ProtoReflect(), p); err != nil {
			return nil, err
		}
	}
	if upd != nil {
		proto.Merge(out, upd)
	}
	if err := Validate(out); err != nil {
		return nil, err
	}
	return out, nil
}

func clearPath(m protoreflect.Message, path string) error {
	parts := strings.Split(path, ".")
	for i, name := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Errorf("reset %q: %s has no field %q (fields: %s)", path, m.Descriptor().Name(), name, fieldNames(m.Descriptor()))
		}
		if i == len(parts)-1 {
			m.Clear(fd)
			return nil
		}
		if fd.Message() == nil {
			return fmt.Errorf("reset %q: %q is not a message", path, name)
		}
		if !m.Has(fd) {
			return nil // nothing set below it
		}
		m = m.Mutable(fd).Message()
	}
	return nil
}

func fieldNames(d protoreflect.MessageDescriptor) string {
	var names []string
	for i := 0; i < d.Fields().Len(); i++ {
		names = append(names, string(d.Fields().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}
