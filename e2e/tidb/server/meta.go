package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/structure"
	"github.com/tistream/tistream/libs/formats/storeline"
)

// Table is a table of the schema at some ts.
type Table struct {
	DBID        int64   `json:"db_id"`
	DB          string  `json:"db"`
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	PhysicalIDs []int64 `json:"physical_ids"` // the table's id, or its partitions' ids
	// PartitionsInDDL are the partition ids a partition DDL job is moving
	// at the ts (listed in the partition info's dropping or adding
	// definitions): DROP and TRUNCATE PARTITION keep a dropped partition in
	// the definitions at their write-only step while TiDB's SQL no longer
	// reads it, so its SQL count there says nothing about its keys.
	PartitionsInDDL []int64 `json:"partitions_in_ddl,omitempty"`
	// Columns maps each public column's lower-case name to its id and
	// type, for the checks that decode values.
	Columns map[string]Column `json:"columns"`
}

// Column is a column's id and type.
type Column struct {
	ID   int64 `json:"id"`
	Tp   byte  `json:"tp"`
	Flag uint  `json:"flag"`
}

// Schema is TiDB's catalog at a ts, read from its meta keys.
type Schema struct {
	Version int64
	Objects []storeline.Object // every database followed by its tables, as stored
	Tables  []Table
}

// ReadSchema reads TiDB's meta at ts through a snapshot of the store: the
// DBs hash (DBInfo JSON per database) and each database's hash
// (TableInfo JSON per table), byte for byte.
func (s *Server) ReadSchema(ts uint64) (*Schema, error) {
	snap := s.Store.GetSnapshot(kv.NewVersion(ts))
	t := structure.NewStructure(snap, nil, []byte{'m'})
	out := &Schema{}
	v, err := t.GetInt64([]byte("SchemaVersionKey"))
	if err != nil {
		return nil, fmt.Errorf("read schema version at %d: %w", ts, err)
	}
	out.Version = v
	dbs, err := t.HGetAll([]byte("DBs"))
	if err != nil {
		return nil, fmt.Errorf("read databases at %d: %w", ts, err)
	}
	type db struct {
		info model.DBInfo
		raw  []byte
	}
	list := make([]db, 0, len(dbs))
	for _, p := range dbs {
		var d db
		if err := json.Unmarshal(p.Value, &d.info); err != nil {
			return nil, fmt.Errorf("database %s at %d: %w", p.Field, ts, err)
		}
		d.raw = p.Value
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].info.ID < list[j].info.ID })
	for _, d := range list {
		out.Objects = append(out.Objects, storeline.Object{Kind: "db", DBID: d.info.ID, Info: string(d.raw)})
		fields, err := t.HGetAll([]byte("DB:" + strconv.FormatInt(d.info.ID, 10)))
		if err != nil {
			return nil, fmt.Errorf("tables of database %d at %d: %w", d.info.ID, ts, err)
		}
		type tbl struct {
			info model.TableInfo
			raw  []byte
		}
		var tables []tbl
		for _, f := range fields {
			if !strings.HasPrefix(string(f.Field), "Table:") {
				continue // auto-id counters and the like
			}
			var x tbl
			if err := json.Unmarshal(f.Value, &x.info); err != nil {
				return nil, fmt.Errorf("table %s of database %d at %d: %w", f.Field, d.info.ID, ts, err)
			}
			x.raw = f.Value
			tables = append(tables, x)
		}
		sort.Slice(tables, func(i, j int) bool { return tables[i].info.ID < tables[j].info.ID })
		for _, x := range tables {
			out.Objects = append(out.Objects, storeline.Object{Kind: "table", DBID: d.info.ID, Info: string(x.raw)})
			if x.info.IsView() || x.info.IsSequence() {
				continue
			}
			tb := Table{DBID: d.info.ID, DB: d.info.Name.O, ID: x.info.ID, Name: x.info.Name.O, Columns: make(map[string]Column)}
			for _, col := range x.info.Columns {
				tb.Columns[col.Name.L] = Column{ID: col.ID, Tp: col.GetType(), Flag: col.GetFlag()}
			}
			if pi := x.info.GetPartitionInfo(); pi != nil {
				for _, def := range pi.Definitions {
					tb.PhysicalIDs = append(tb.PhysicalIDs, def.ID)
				}
				for _, defs := range [][]model.PartitionDefinition{pi.DroppingDefinitions, pi.AddingDefinitions} {
					for _, def := range defs {
						tb.PartitionsInDDL = append(tb.PartitionsInDDL, def.ID)
					}
				}
			} else {
				tb.PhysicalIDs = []int64{x.info.ID}
			}
			out.Tables = append(out.Tables, tb)
		}
	}
	return out, nil
}
