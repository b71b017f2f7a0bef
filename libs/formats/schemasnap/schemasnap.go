// Package schemasnap writes and reads schema snapshot files: a tenant's
// databases and tables at a ts, as TiDB's DBInfo/TableInfo JSON
// (docs/formats/schema-snapshot.md).
package schemasnap

import (
	"errors"
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/workpool"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// Writer builds one schema snapshot file.
type Writer struct {
	c              *container.Writer
	dbs, tables    uint64
	wantDB, wantTb uint64
	lastDB         int64
	haveDB         bool
}

// NewWriter starts a snapshot; the header's counts must match what is added.
func NewWriter(h *formatv1.SchemaSnapshotHeader) (*Writer, error) {
	if h.ClusterId == 0 {
		return nil, errors.New("schema snapshot header: cluster_id is 0")
	}
	w := &Writer{c: container.NewWriter(container.KindSchemaSnapshot, container.Options{Codec: container.CodecZstd}),
		wantDB: h.DbCount, wantTb: h.TableCount}
	return w, w.c.AppendMessage(h)
}

// AddDatabase adds a database; its tables follow it.
func (w *Writer) AddDatabase(id int64, dbInfoJSON []byte) error {
	w.dbs++
	w.lastDB, w.haveDB = id, true
	return w.c.AppendMessage(&formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_DATABASE, DbId: id, InfoJson: dbInfoJSON})
}

// AddTable adds a table of the database added last.
func (w *Writer) AddTable(dbID int64, tableInfoJSON []byte) error {
	if !w.haveDB || dbID != w.lastDB {
		return fmt.Errorf("schema snapshot: table of db %d added outside its database", dbID)
	}
	w.tables++
	return w.c.AppendMessage(&formatv1.SchemaObject{Kind: formatv1.SchemaObject_KIND_TABLE, DbId: dbID, InfoJson: tableInfoJSON})
}

// Finish checks the counts and returns the file.
func (w *Writer) Finish() ([]byte, error) {
	if w.dbs != w.wantDB || w.tables != w.wantTb {
		return nil, fmt.Errorf("schema snapshot: header counts %d dbs and %d tables, %d and %d were added", w.wantDB, w.wantTb, w.dbs, w.tables)
	}
	return w.c.Finish()
}

// Snapshot is a decoded schema snapshot.
type Snapshot struct {
	Header  *formatv1.SchemaSnapshotHeader
	Objects []*formatv1.SchemaObject // databases, each followed by its tables
}

// Decode reads and checks a whole snapshot file: framing, counts, the
// database-then-tables order and that every info is a JSON object.
func Decode(name string, data []byte) (*Snapshot, error) {
	s := &Snapshot{}
	h, err := Scan(name, data, func(o *formatv1.SchemaObject) error {
		s.Objects = append(s.Objects, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Every object's JSON, checked on every core (1,000,000 TableInfos
	// are 2.6 GB); the first bad one in the file is the one named.
	if err := workpool.Each(len(s.Objects), func(i int) error {
		if o := s.Objects[i]; !tidbcodec.ValidJSON(o.InfoJson) { // encoding/json.Valid, faster
			return &container.CorruptError{Object: name, Reason: fmt.Sprintf("info_json of %s %d is not valid JSON", o.Kind, o.DbId)}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	s.Header = h
	return s, nil
}

// Scan reads a snapshot file object by object and hands each to fn as it
// is read (a new one each time: fn may keep it), so a reader that keeps a
// few objects needs memory for those, not for the whole schema. It checks
// what Decode does except that an info_json is whole JSON: it checks only
// that it starts an object, and a reader that uses one decodes it (and
// fails) anyway — checking a million TableInfos the reader skips would
// cost most of the scan. An error of fn stops the scan and is returned.
// The counts are checked at the end: a reader must drop what it kept when
// Scan fails.
func Scan(name string, data []byte, fn func(*formatv1.SchemaObject) error) (*formatv1.SchemaSnapshotHeader, error) {
	return ScanWithHeader(name, data, nil, fn)
}

// ScanWithHeader is Scan, handing the header to head (if not nil) before
// the first object: a reader that builds something at the snapshot's ts
// from each object as it comes (the schema registry's history) needs the
// ts first. The header's counts are checked only at the end.
func ScanWithHeader(name string, data []byte, head func(*formatv1.SchemaSnapshotHeader) error, fn func(*formatv1.SchemaObject) error) (*formatv1.SchemaSnapshotHeader, error) {
	r, err := container.Open(name, data, container.KindSchemaSnapshot)
	if err != nil {
		return nil, err
	}
	h := &formatv1.SchemaSnapshotHeader{}
	if err := r.NextMessage(h); err != nil {
		if err == io.EOF {
			return nil, r.Corrupt(nil, "no header")
		}
		return nil, err
	}
	if head != nil {
		if err := head(h); err != nil {
			return nil, err
		}
	}
	var dbs, tables uint64
	var curDB int64
	haveDB := false
	for {
		o := &formatv1.SchemaObject{}
		err := r.NextMessage(o)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(o.InfoJson) == 0 || o.InfoJson[0] != '{' {
			return nil, r.Corrupt(nil, "info_json of %s %d is not a JSON object", o.Kind, o.DbId)
		}
		switch o.Kind {
		case formatv1.SchemaObject_KIND_DATABASE:
			dbs++
			curDB, haveDB = o.DbId, true
		case formatv1.SchemaObject_KIND_TABLE:
			if !haveDB || o.DbId != curDB {
				return nil, r.Corrupt(nil, "table of db %d does not follow its database", o.DbId)
			}
			tables++
		default:
			return nil, r.Corrupt(nil, "unknown schema object kind %d", o.Kind)
		}
		if err := fn(o); err != nil {
			return nil, err
		}
	}
	if dbs != h.DbCount || tables != h.TableCount {
		return nil, &container.CorruptError{Object: name, Reason: fmt.Sprintf("header counts %d dbs and %d tables, the file has %d and %d", h.DbCount, h.TableCount, dbs, tables)}
	}
	return h, nil
}
