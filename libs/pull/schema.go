package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// A pull keeps the part of the tenant's schema it needs, not the whole
// snapshot: its memory follows what it reads, not the number of tables
// (a snapshot of 1,000,000 tables decodes into gigabytes). It holds
//
//   - the snapshot's header (its ts and schema version) and databases, and
//     every change of the meta range since (a history's size follows DDL);
//   - a table pull: the table;
//   - a database pull: the ids of the database's tables in the snapshot,
//     sorted (8 bytes a table); each one a later change touches is added to
//     the history by id and database before the change is applied, so that
//     the change reads as in a history of the whole snapshot.
//
// A row's table is in a database pull's database at commit_ts when a
// change touched it and the history says so, or when none did and it was
// in the database in the snapshot.

// snapshot is the tenant's schema snapshot in the pool, read when needed.
type snapshot struct {
	key  string
	data []byte // the encoded file (compressed: ~14 bytes a table)
}

func readSnapshot(ctx context.Context, store objstore.Store, tenant uint64) (*snapshot, error) {
	key, b, err := schema.ReadPoolSnapshot(ctx, store, tenant)
	if err != nil {
		return nil, err
	}
	return &snapshot{key: key, data: b}, nil
}

// tableID reads a snapshot table's id (tidbcodec.TableInfoID).
func tableID(o *formatv1.SchemaObject) (int64, error) {
	id, err := tidbcodec.TableInfoID(o.InfoJson)
	if err != nil {
		return 0, fmt.Errorf("schema snapshot: table of db %d: %w", o.DbId, err)
	}
	return id, nil
}

// partialHistory loads the snapshot's databases and, for a table pull, the
// table, and for a database pull collects the ids of the tables of every
// snapshot database named req.DB (which of them is the pulled one is known
// once the meta range has been read up to the start).
func (s *snapshot) partialHistory(req Request) (*schema.History, map[int64][]int64, error) {
	part := &schemasnap.Snapshot{}
	byDB := map[int64][]int64{}
	named := map[int64]bool{} // snapshot databases named req.DB
	wantName := tidbcodec.NewCIStr(req.DB).L
	want := []byte(strconv.FormatInt(req.Table, 10))
	hdr, err := schemasnap.Scan(s.key, s.data, func(o *formatv1.SchemaObject) error {
		switch o.Kind {
		case formatv1.SchemaObject_KIND_DATABASE:
			part.Objects = append(part.Objects, o)
			if req.DB != "" {
				var di tidbcodec.DBInfo
				if err := json.Unmarshal(o.InfoJson, &di); err != nil {
					return fmt.Errorf("schema snapshot: DBInfo of db %d: %w", o.DbId, err)
				}
				named[o.DbId] = di.Name.L == wantName
			}
		case formatv1.SchemaObject_KIND_TABLE:
			switch {
			case req.Table != 0:
				if !bytes.Contains(o.InfoJson, want) {
					// Its id is not req.Table: the digits would be in it
					// (an id is a plain integer; the decoder takes no
					// other form into an int64).
					return nil
				}
				id, err := tableID(o)
				if err != nil {
					return err
				}
				if id == req.Table {
					part.Objects = append(part.Objects, o)
				}
			case named[o.DbId]:
				id, err := tableID(o)
				if err != nil {
					return err
				}
				byDB[o.DbId] = append(byDB[o.DbId], id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	part.Header = hdr
	h := schema.New(hdr.TenantId)
	if err := h.LoadSnapshot(part); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.key, err)
	}
	for _, ids := range byDB {
		slices.Sort(ids)
	}
	return h, byDB, nil
}

// metaTable returns the table a meta key writes (hash DB:{db}, field
// Table:{id}), if it is one.
func metaTable(key []byte) (int64, bool) {
	mk, err := tidbcodec.DecodeMetaKey(key)
	if err != nil || mk.Type != tidbcodec.MetaHashData {
		return 0, false
	}
	if _, err := tidbcodec.ParseDBField(string(mk.Key)); err != nil {
		return 0, false
	}
	id, err := tidbcodec.ParseTableField(string(mk.Field))
	return id, err == nil
}

// LoadSchema builds the tenant's whole schema history from the pool: the
// snapshot and every meta change published so far. Its memory grows with
// the number of tables (a pull does not need it): for tools and tests.
func LoadSchema(ctx context.Context, store objstore.Store, tenant uint64) (*schema.History, error) {
	h, err := schema.LoadFromPool(ctx, store, tenant)
	if err != nil {
		return nil, err
	}
	meta, err := schema.FollowMeta(ctx, store, tenant, h.Resolved()+1)
	if err != nil {
		return nil, err
	}
	for {
		b, err := meta.Poll(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := h.ApplyBatch(b); err != nil {
			return nil, err
		}
		if b.CaughtUp {
			return h, nil
		}
	}
}
