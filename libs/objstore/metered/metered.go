// Package metered counts the requests a service makes to object storage: a
// Store wrapper that every service's stores go through (tistream run and
// tistream up wrap them when they open them), so requests are counted the
// same way whatever the caller, and a reader for the counts it exported.
//
// What a request is for (its purpose, and its tenant where the key says
// it) comes from the key through a Classifier (the fleet's is
// layout.Classify): callers pass nothing, so no call site can forget to
// say it, and a change of key layout changes the labels in one place.
package metered

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tistream/tistream/libs/objstore"
)

// Metric names (docs/operations.md, "Object-store requests").
const (
	RequestsMetric = "tistream_objstore_requests_total"
	BytesMetric    = "tistream_objstore_bytes_total"
)

// Request kinds: one per method of objstore.Store that talks to the store
// (objstore.PartsPutter's methods count as Put and PutIfAbsent).
const (
	KindPut         = "put"
	KindPutIfAbsent = "put_if_absent"
	KindGet         = "get"
	KindGetRange    = "get_range"
	KindList        = "list"
	KindDelete      = "delete"
)

// Outcomes of a request.
const (
	OutcomeOK       = "ok"
	OutcomeNotFound = "not_found" // objstore.ErrNotFound
	OutcomeExists   = "exists"    // objstore.ErrExists: a put-if-absent lost
	OutcomeError    = "error"     // anything else, cancellations included
)

// Byte directions, as object storage bills them: in is uploaded to it, out
// is downloaded from it.
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

// Classifier names what a key (or a listing prefix) is for and its tenant
// ("" when the key does not say). Both must come from bounded sets: they
// are metric labels.
type Classifier func(key string) (purpose, tenant string)

// Metrics are the request counters of one registry.
type Metrics struct {
	requests *prometheus.CounterVec // service, purpose, kind, outcome, tenant
	bytes    *prometheus.CounterVec // service, purpose, direction, tenant
	tap      Tap
	label    func(tenant string) string
}

// Tap sees every request counted, after it was made: the tenant metering
// (usage.Meter) counts a tenant's requests from it.
type Tap interface {
	Request(purpose, tenant, kind string)
}

// WithTap makes m report every request to t. Call it before Wrap.
func (m *Metrics) WithTap(t Tap) *Metrics {
	m.tap = t
	return m
}

// WithTenantLabel maps the tenant label values (a cardinality guard such
// as usage.LabelGuard.Label: at most N tenants, the rest "other"). Call it
// before Wrap.
func (m *Metrics) WithTenantLabel(label func(tenant string) string) *Metrics {
	m.label = label
	return m
}

// NewMetrics registers the counters with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: RequestsMetric,
			Help: "Object-store requests by the service making them, purpose (what the key is: store_file, pool_data, pool_log, sorter_snapshot, ...), kind (put, put_if_absent, get, get_range, list, delete), outcome (ok, not_found, exists, error) and tenant (empty when the key names none). One per call: retries inside the S3 client are not counted."},
			[]string{"service", "purpose", "kind", "outcome", "tenant"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{Name: BytesMetric,
			Help: "Object bytes of successful puts (direction in) and gets (direction out), by service, purpose and tenant."},
			[]string{"service", "purpose", "direction", "tenant"}),
	}
}

// Wrap returns s counting every request as made by service.
func (m *Metrics) Wrap(s objstore.Store, service string, classify Classifier) objstore.Store {
	return &store{Store: s, m: m, service: service, classify: classify}
}

// store is a counting objstore.Store.
type store struct {
	objstore.Store
	m        *Metrics
	service  string
	classify Classifier
}

var (
	_ objstore.Store       = (*store)(nil)
	_ objstore.PartsPutter = (*store)(nil)
)

// count records one request on key and, when it succeeded, its bytes.
func (s *store) count(key, kind string, err error, direction string, n int) {
	purpose, tenant := s.classify(key)
	if s.m.tap != nil {
		s.m.tap.Request(purpose, tenant, kind)
	}
	if s.m.label != nil {
		tenant = s.m.label(tenant)
	}
	s.m.requests.WithLabelValues(s.service, purpose, kind, outcome(err), tenant).Inc()
	if err == nil && direction != "" && n > 0 {
		s.m.bytes.WithLabelValues(s.service, purpose, direction, tenant).Add(float64(n))
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, objstore.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, objstore.ErrExists):
		return OutcomeExists
	}
	return OutcomeError
}

// Put implements objstore.Store.
func (s *store) Put(ctx context.Context, key string, data []byte) error {
	err := s.Store.Put(ctx, key, data)
	s.count(key, KindPut, err, DirectionIn, len(data))
	return err
}

// PutIfAbsent implements objstore.Store.
func (s *store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	err := s.Store.PutIfAbsent(ctx, key, data)
	s.count(key, KindPutIfAbsent, err, DirectionIn, len(data))
	return err
}

// PutParts implements objstore.PartsPutter: counted as one put of the
// whole object, and passed on in parts.
func (s *store) PutParts(ctx context.Context, key string, parts [][]byte) error {
	err := objstore.PutParts(ctx, s.Store, key, parts...)
	s.count(key, KindPut, err, DirectionIn, objstore.PartsLen(parts))
	return err
}

// PutIfAbsentParts implements objstore.PartsPutter: counted as one
// put-if-absent of the whole object, and passed on in parts.
func (s *store) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	err := objstore.PutIfAbsentParts(ctx, s.Store, key, parts...)
	s.count(key, KindPutIfAbsent, err, DirectionIn, objstore.PartsLen(parts))
	return err
}

// Get implements objstore.Store.
func (s *store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Get(ctx, key)
	s.count(key, KindGet, err, DirectionOut, len(b))
	return b, err
}

// GetRange implements objstore.Store.
func (s *store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := s.Store.GetRange(ctx, key, off, n)
	s.count(key, KindGetRange, err, DirectionOut, len(b))
	return b, err
}

// GetRangeInto implements objstore.RangeIntoGetter, passing buf on.
func (s *store) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	b, err := objstore.GetRangeInto(ctx, s.Store, key, off, buf)
	s.count(key, KindGetRange, err, DirectionOut, len(b))
	return b, err
}

// List implements objstore.Store: one request per page.
func (s *store) List(ctx context.Context, prefix, startAfter string, limit int) ([]objstore.ObjectInfo, bool, error) {
	objs, more, err := s.Store.List(ctx, prefix, startAfter, limit)
	s.count(prefix, KindList, err, "", 0)
	return objs, more, err
}

// Delete implements objstore.Store.
func (s *store) Delete(ctx context.Context, key string) error {
	err := s.Store.Delete(ctx, key)
	s.count(key, KindDelete, err, "", 0)
	return err
}

// Sample is one counter series read back by Gather.
type Sample struct {
	Service   string  `json:"service"`
	Purpose   string  `json:"purpose"`
	Tenant    string  `json:"tenant,omitempty"`
	Kind      string  `json:"kind,omitempty"`      // requests only
	Outcome   string  `json:"outcome,omitempty"`   // requests only
	Direction string  `json:"direction,omitempty"` // bytes only
	Value     float64 `json:"value"`
}

// Gather reads this package's counters from g (every registry a fleet's
// services registered with): the request series and the byte series.
func Gather(gs ...prometheus.Gatherer) (requests, bytes []Sample, err error) {
	for _, g := range gs {
		families, err := g.Gather()
		if err != nil {
			return nil, nil, err
		}
		for _, f := range families {
			name := f.GetName()
			if name != RequestsMetric && name != BytesMetric {
				continue
			}
			for _, m := range f.GetMetric() {
				s := Sample{Value: m.GetCounter().GetValue()}
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "service":
						s.Service = l.GetValue()
					case "purpose":
						s.Purpose = l.GetValue()
					case "tenant":
						s.Tenant = l.GetValue()
					case "kind":
						s.Kind = l.GetValue()
					case "outcome":
						s.Outcome = l.GetValue()
					case "direction":
						s.Direction = l.GetValue()
					}
				}
				if name == RequestsMetric {
					requests = append(requests, s)
				} else {
					bytes = append(bytes, s)
				}
			}
		}
	}
	return requests, bytes, nil
}
