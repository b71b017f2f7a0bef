package objstore

import (
	"context"
	"fmt"
)

// ListAll pages through s.List from startAfter until no objects remain and
// returns every object under prefix. The loop is bounded by the data: each
// page must move past the last key of the one before, so a store that keeps
// answering the same page is reported instead of looped on.
func ListAll(ctx context.Context, s Store, prefix, startAfter string) ([]ObjectInfo, error) {
	var all []ObjectInfo
	for {
		page, more, err := s.List(ctx, prefix, startAfter, 0)
		if err != nil {
			return all, err
		}
		if len(page) == 0 {
			if more {
				return all, fmt.Errorf("list %s prefix %q after %q: empty page claims more objects", s, prefix, startAfter)
			}
			return all, nil
		}
		last := page[len(page)-1].Key
		if last <= startAfter {
			return all, fmt.Errorf("list %s prefix %q after %q: page did not advance (last key %q)", s, prefix, startAfter, last)
		}
		all = append(all, page...)
		if !more {
			return all, nil
		}
		startAfter = last
	}
}
