package metaserver

import "fmt"

// rangeLimit is the most ACTIVE ranges a tenant may have, and the setting
// that says so (for messages): its max_ranges quota — its own, or the fleet
// default --tenant-default-max-ranges — when that is set (not 0), which
// takes precedence, else --max-ranges-per-tenant. Read from the mirror at
// every split, so an UpdateTenant applies without a restart
// (docs/tenants.md, "Quotas").
func (s *Service) rangeLimit(tenant uint64) (limit int, by string) {
	if q := s.effective(tenant).Quotas.MaxRanges; q > 0 {
		return int(q), fmt.Sprintf("its max_ranges quota is %d", q)
	}
	return s.cfg.MaxRangesPerTenant, fmt.Sprintf("--max-ranges-per-tenant=%d", s.cfg.MaxRangesPerTenant)
}
