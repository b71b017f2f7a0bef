package apiserver

import (
	"cmp"
	"context"
	"slices"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	schemav1 "github.com/tistream/tistream/proto/gen/go/tistream/schema/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// schemaFollower follows a tenant's schema changes from the registry as a
// pull advances: the schema version valid at the pull's position, which
// tables it covers (database pulls), and the DDL events it owes.
type schemaFollower struct {
	s      *Service
	tenant uint64
	kind   string
	table  int64          // table pulls
	db     int64          // database pulls
	member map[int64]bool // database pulls: the database's tables now
	// known: every change with commit_ts <= known has been fetched.
	known   uint64
	version int64 // the schema version after the changes applied so far
	pending []*schemav1.SchemaChange
}

// advance fetches the changes up to target, or as far as the registry has
// read. An answer may stop short of what it has read (its size is bounded;
// resolved_ts says where it is complete), so it asks again until target or
// until the registry has nothing more. Errors are the registry's, for the
// caller to judge.
func (f *schemaFollower) advance(ctx context.Context, target uint64) error {
	for i := 0; i < maxAsks && f.known < target; i++ {
		progressed, err := f.ask(ctx, target)
		if err != nil || !progressed {
			return err
		}
	}
	return nil
}

// maxAsks bounds the registry calls of one round of a pull.
const maxAsks = 8

func (f *schemaFollower) ask(ctx context.Context, target uint64) (bool, error) {
	resp, err := f.s.changes(ctx, f.tenant, f.known, target)
	if status.Code(err) == codes.FailedPrecondition {
		// Not read up to target yet: learn how far it has, and take that.
		probe, perr := f.s.changes(ctx, f.tenant, f.known, f.known)
		if perr != nil {
			return false, perr
		}
		if probe.ResolvedTs <= f.known {
			return false, nil
		}
		target = min(target, probe.ResolvedTs)
		resp, err = f.s.changes(ctx, f.tenant, f.known, target)
	}
	if err != nil {
		return false, err
	}
	upTo := min(target, resp.ResolvedTs)
	if upTo <= f.known {
		return false, nil
	}
	for _, c := range resp.Changes {
		if c.CommitTs > f.known && c.CommitTs <= upTo {
			f.pending = append(f.pending, c)
		}
	}
	slices.SortStableFunc(f.pending, func(a, b *schemav1.SchemaChange) int { return cmp.Compare(a.CommitTs, b.CommitTs) })
	f.known = upTo
	return true, nil
}

// applyThrough applies the fetched changes with commit_ts <= ts in commit
// order and emits the DDL events among them. The changes of one commit_ts
// are applied together: their DDL events carry the version after all of
// them, whatever order the registry listed them in.
func (f *schemaFollower) applyThrough(ts uint64, emit func(*apiv1.DDL) error) error {
	for len(f.pending) > 0 && f.pending[0].CommitTs <= ts {
		at := f.pending[0].CommitTs
		n := 1
		for n < len(f.pending) && f.pending[n].CommitTs == at {
			n++
		}
		group := f.pending[:n]
		for _, c := range group {
			f.version = max(f.version, c.SchemaVersion)
		}
		for _, c := range group {
			if d := f.apply(c); d != nil {
				d.SchemaVersion = f.version
				if err := emit(d); err != nil {
					return err
				}
			}
		}
		clear(group)
		f.pending = f.pending[n:]
	}
	if len(f.pending) == 0 {
		f.pending = nil
	}
	return nil
}

var ddlKinds = map[schemav1.SchemaChange_Kind]apiv1.DDL_Kind{
	schemav1.SchemaChange_KIND_CREATE_TABLE: apiv1.DDL_KIND_CREATE_TABLE,
	schemav1.SchemaChange_KIND_ALTER_TABLE:  apiv1.DDL_KIND_ALTER_TABLE,
	schemav1.SchemaChange_KIND_DROP_TABLE:   apiv1.DDL_KIND_DROP_TABLE,
}

// apply updates what the pull covers and returns the change's DDL event if
// it concerns a pulled table.
func (f *schemaFollower) apply(c *schemav1.SchemaChange) *apiv1.DDL {
	if c.Kind == schemav1.SchemaChange_KIND_DROP_DATABASE && f.kind == kindDB && c.DbId == f.db {
		clear(f.member)
		return nil
	}
	kind, ok := ddlKinds[c.Kind]
	if !ok {
		return nil
	}
	switch f.kind {
	case kindTable:
		if c.TableId != f.table {
			return nil
		}
	case kindDB:
		in := f.member[c.TableId]
		switch {
		case c.Kind == schemav1.SchemaChange_KIND_DROP_TABLE:
			if !in && c.DbId != f.db {
				return nil
			}
			delete(f.member, c.TableId)
		case c.DbId == f.db:
			f.member[c.TableId] = true // created in, or moved into, the database
		case in:
			delete(f.member, c.TableId) // moved to another database
		default:
			return nil
		}
	}
	d := &apiv1.DDL{CommitTs: c.CommitTs, Kind: kind, DbId: c.DbId, TableId: c.TableId,
		DbName: c.DbName, TableName: c.TableName}
	if kind != apiv1.DDL_KIND_DROP_TABLE {
		d.TableInfoJson = c.InfoJson
	}
	return d
}

// wants tells whether rows of the table are pulled at the current position.
func (f *schemaFollower) wants(tableID int64) bool {
	if f.kind == kindDB {
		return f.member[tableID]
	}
	return true
}
