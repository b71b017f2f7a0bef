package storefile

import (
	"context"
	"errors"
	"fmt"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/objstore"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// headerProbe is ReadHeader's first ranged read: a delta header's block,
// and most full lists up to a few hundred regions, fit in it.
const headerProbe = 64 << 10

// ReadHeader reads and checks the header of the store file at key with
// ranged reads of its first block only: one read when the block is at most
// 64 KiB, two otherwise (a full list of many regions). A file that is not a
// store change file, or whose first block is damaged, is a
// *container.CorruptError.
func ReadHeader(ctx context.Context, store objstore.Store, key string) (*formatv1.StoreFileHeader, error) {
	data, err := store.GetRange(ctx, key, 0, headerProbe)
	if err != nil {
		return nil, err
	}
	var short *container.ShortError
	if _, err := container.FirstRecord(key, data, container.KindStoreChange); errors.As(err, &short) && len(data) == headerProbe {
		if data, err = store.GetRange(ctx, key, 0, short.Need); err != nil {
			return nil, err
		}
	}
	return ParseHeader(key, data)
}

// ParseHeader checks the framing of a store file's preamble and first
// block and returns its header, checked as a header alone can be (its
// leader list is checked when a Stream reads the file).
func ParseHeader(name string, data []byte) (*formatv1.StoreFileHeader, error) {
	rec, err := container.FirstRecord(name, data, container.KindStoreChange)
	var short *container.ShortError
	if errors.As(err, &short) {
		return nil, &container.CorruptError{Object: name, Offset: int64(len(data)),
			Reason: fmt.Sprintf("file ends before its first block does (%d bytes, need %d)", len(data), short.Need)}
	}
	if err != nil {
		return nil, err
	}
	return decodeHeaderRecord(name, rec)
}

func decodeHeaderRecord(name string, rec []byte) (*formatv1.StoreFileHeader, error) {
	h := &formatv1.StoreFileHeader{}
	if err := proto.Unmarshal(rec, h); err != nil {
		return nil, &container.CorruptError{Object: name, Offset: 8, Reason: "record 0 does not decode as StoreFileHeader", Err: err}
	}
	if err := checkHeader(h); err != nil {
		return nil, &container.CorruptError{Object: name, Offset: 8, Reason: "bad store file header", Err: err}
	}
	return h, nil
}

// BaseFromStore is the BaseLoader of one store's stream kept in store: it
// reads the base file's header with ReadHeader.
func BaseFromStore(ctx context.Context, store objstore.Store, cluster, tenant, storeID uint64) BaseLoader {
	return func(seq, maxTs uint64) (*formatv1.StoreFileHeader, error) {
		return ReadHeader(ctx, store, layout.StoreFileKey(cluster, tenant, storeID, seq, maxTs))
	}
}
