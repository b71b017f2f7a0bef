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
	table  int64    // table pulls
	db     int64    // database pulls
	member *members // database pulls, and pulls of a partitioned table: what is followed now
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

// apply updates what the pull covers and returns the change's DDL event if
// it concerns the pull.
func (f *schemaFollower) apply(c *schemav1.SchemaChange) *apiv1.DDL {
	d := ddlEvent(c)
	switch f.kind {
	case kindTenant:
		return d
	case kindTable:
		if d == nil || (c.TableId != f.table && d.OldTableId != f.table) {
			return nil
		}
		if f.member != nil && d.TableId == f.table && d.Kind != apiv1.DDL_KIND_DROP_TABLE {
			f.member.set(f.table, d.TableInfoJson) // partitions added or dropped
		}
		return d
	}
	if c.Kind == schemav1.SchemaChange_KIND_DROP_DATABASE {
		if c.DbId != f.db {
			return nil
		}
		f.member.clear()
		return d
	}
	if d == nil || c.TableId == 0 {
		return nil
	}
	in := f.member.has(c.TableId) || (d.OldTableId != 0 && f.member.has(d.OldTableId))
	switch {
	case d.Kind == apiv1.DDL_KIND_DROP_TABLE:
		if !in && c.DbId != f.db {
			return nil
		}
		f.member.remove(c.TableId)
	case c.DbId == f.db:
		f.member.remove(d.OldTableId)
		f.member.set(c.TableId, d.TableInfoJson) // created in, moved into, or altered in the database
	case in:
		f.member.remove(c.TableId) // moved to another database
	default:
		return nil
	}
	return d
}

// wants tells whether rows of the table are pulled at the current position.
func (f *schemaFollower) wants(tableID int64) bool {
	if f.member != nil {
		return f.member.wants(tableID)
	}
	return true
}
