package watermark

import "fmt"

// Ref names one region incarnation: one leadership (Term) of one region epoch
// version (Version) of one region (RegionID), as in the upstream
// IncarnationRef. The zero Ref is reserved for holes and is never a valid
// incarnation.
type Ref struct {
	RegionID uint64
	Version  uint64
	Term     uint64
}

// Compare orders incarnations from oldest to newest: by Version, then Term,
// then RegionID. For one key, TiKV's versions and terms only grow over time,
// so a greater (Version, Term) is a later owner of the key. RegionID is only a
// deterministic tie-break for input that breaks that rule (two regions of the
// same version overlapping), which the Map counts as a conflict.
func (r Ref) Compare(o Ref) int {
	switch {
	case r.Version != o.Version:
		return cmpU64(r.Version, o.Version)
	case r.Term != o.Term:
		return cmpU64(r.Term, o.Term)
	default:
		return cmpU64(r.RegionID, o.RegionID)
	}
}

// IsZero reports whether r is the zero Ref (the owner of holes).
func (r Ref) IsZero() bool { return r == Ref{} }

func (r Ref) String() string {
	return fmt.Sprintf("r%d/v%d/t%d", r.RegionID, r.Version, r.Term)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
