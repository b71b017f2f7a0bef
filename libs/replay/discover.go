package replay

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tistream/tistream/libs/objstore"
)

// children lists the distinct next path segments under prefix that start
// with label (for example the "tenant-" folders of a cluster), jumping over
// each folder's contents instead of listing them.
func children(ctx context.Context, store objstore.Store, prefix, label string) ([]uint64, error) {
	var ids []uint64
	after := ""
	for {
		page, _, err := store.List(ctx, prefix+label, after, 1)
		if err != nil {
			return nil, fmt.Errorf("list %s%s: %w", prefix, label, err)
		}
		if len(page) == 0 {
			return ids, nil
		}
		rest := strings.TrimPrefix(page[0].Key, prefix+label)
		seg, _, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, fmt.Errorf("unexpected object %s under %s", page[0].Key, prefix)
		}
		id, err := strconv.ParseUint(seg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected folder %s%s%s: %w", prefix, label, seg, err)
		}
		ids = append(ids, id)
		after = prefix + label + seg + "/\xff"
	}
}
