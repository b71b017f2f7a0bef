package usage

import (
	"strconv"
	"sync"
)

// OtherTenant is the label value of the tenants past a LabelGuard's limit.
const OtherTenant = "other"

// LabelGuard bounds the distinct tenant label values one process exports:
// the first max tenants seen keep their id, every later one is labelled
// OtherTenant, so a fleet with many tenants cannot blow up the metric
// series of a process. The durable usage records are not affected: they
// are per tenant whatever the guard says.
type LabelGuard struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

// NewLabelGuard admits at most max tenant labels (max <= 0: unbounded).
func NewLabelGuard(max int) *LabelGuard {
	return &LabelGuard{max: max, seen: map[string]struct{}{}}
}

// Label is the label value of a tenant given in decimal ("" stays "": no
// tenant).
func (g *LabelGuard) Label(tenant string) string {
	if g == nil || tenant == "" || g.max <= 0 {
		return tenant
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[tenant]; ok {
		return tenant
	}
	if len(g.seen) >= g.max {
		return OtherTenant
	}
	g.seen[tenant] = struct{}{}
	return tenant
}

// LabelOf is Label of a numeric tenant id.
func (g *LabelGuard) LabelOf(tenant uint64) string {
	return g.Label(strconv.FormatUint(tenant, 10))
}
