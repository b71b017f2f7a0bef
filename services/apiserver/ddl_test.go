package apiserver

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/truth"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

var ddlKindOf = map[string]apiv1.DDL_Kind{
	"create_table":   apiv1.DDL_KIND_CREATE_TABLE,
	"alter_table":    apiv1.DDL_KIND_ALTER_TABLE,
	"add_column":     apiv1.DDL_KIND_ADD_COLUMN,
	"drop_column":    apiv1.DDL_KIND_DROP_COLUMN,
	"add_index":      apiv1.DDL_KIND_ADD_INDEX,
	"truncate_table": apiv1.DDL_KIND_TRUNCATE_TABLE,
	"rename_table":   apiv1.DDL_KIND_RENAME_TABLE,
	"drop_table":     apiv1.DDL_KIND_DROP_TABLE,
}

// checkDDLs compares the DDL events of a pull with the truth's DDLs: kind,
// ids, schema version, names, and the job's id and SQL text.
func checkDDLs(t *testing.T, want []truth.DDL, got []*apiv1.DDL) {
	t.Helper()
	type ddl struct {
		commitTs            uint64
		tableID, dbID       int64
		kind                apiv1.DDL_Kind
		version             int64
		db, table           string
		oldTableID, jobID   int64
		query               string
		hasTableInfo        bool
		withJobType, hasJob bool
	}
	w := make([]ddl, len(want))
	for i, d := range want {
		require.Contains(t, ddlKindOf, d.Action)
		w[i] = ddl{d.CommitTs, d.TableID, d.DBID, ddlKindOf[d.Action], d.SchemaVersion, d.DBName, d.TableName,
			d.OldTableID, d.JobID, d.Query, d.Action != "drop_table", d.JobID != 0, d.JobID != 0}
	}
	g := make([]ddl, len(got))
	for i, d := range got {
		g[i] = ddl{d.CommitTs, d.TableId, d.DbId, d.Kind, d.SchemaVersion, d.DbName, d.TableName,
			d.OldTableId, d.JobId, d.Query, len(d.TableInfoJson) > 0, d.JobType != 0, d.JobState != 0}
	}
	require.Equal(t, w, g)
}

// truthSchema follows which database each table of a tenant is in, from
// the schema snapshot (listed through the API) and the truth's DDLs.
type truthSchema struct {
	db map[int64]int64 // table id -> db id
}

func initialSchema(t *testing.T, s *server, f *fixture, tenant uint64) *truthSchema {
	ctx := pullCtx(t)
	snap := f.snapTs[tenant]
	dbs, err := s.client.ListDBs(ctx, &apiv1.ListDBsRequest{TenantId: tenant, Ts: snap})
	require.NoError(t, err)
	ts := &truthSchema{db: map[int64]int64{}}
	for _, d := range dbs.Dbs {
		resp, err := s.client.ListTables(ctx, &apiv1.ListTablesRequest{TenantId: tenant, Db: d.Name, Ts: snap})
		require.NoError(t, err)
		for _, tb := range resp.Tables {
			ts.db[tb.Id] = d.Id
		}
	}
	return ts
}

// apply moves the schema past one truth DDL.
func (s *truthSchema) apply(d truth.DDL) {
	delete(s.db, d.OldTableID)
	if d.Action == "drop_table" {
		delete(s.db, d.TableID)
	} else {
		s.db[d.TableID] = d.DBID
	}
}

// tablesAt is the truth's tables of a tenant's database at ts.
func tablesAt(t *testing.T, s *server, f *fixture, tenant uint64, db string, ts uint64) []int64 {
	t.Helper()
	id := dbID(t, s, tenant, db)
	sch := initialSchema(t, s, f, tenant)
	for _, d := range f.ddlsOf(tenant, 0, nil) {
		if d.CommitTs <= ts {
			sch.apply(d)
		}
	}
	var out []int64
	for tb, in := range sch.db {
		if in == id {
			out = append(out, tb)
		}
	}
	slices.Sort(out)
	return out
}

// dbPullExpect is what a pull of database db from `from` must get: the DDL
// events of the tables while they belong to it (the change that moves a
// table in or out included), and the tables that stay in it throughout,
// whose rows the truth can check whole.
func dbPullExpect(t *testing.T, s *server, f *fixture, tenant uint64, db string, from uint64) (ddls []truth.DDL, steady []int64) {
	id := dbID(t, s, tenant, db)
	sch := initialSchema(t, s, f, tenant)
	moved := map[int64]bool{}
	all := map[int64]bool{}
	for _, d := range f.ddlsOf(tenant, 0, nil) {
		before, had := sch.db[d.TableID]
		oldIn := d.OldTableID != 0 && sch.db[d.OldTableID] == id
		sch.apply(d)
		if d.CommitTs < from {
			continue
		}
		after, has := sch.db[d.TableID]
		wasIn, isIn := had && before == id, has && after == id
		if wasIn || isIn || oldIn || (d.Action == "drop_table" && d.DBID == id) {
			ddls = append(ddls, d)
		}
		if wasIn != isIn && d.Action == "rename_table" {
			moved[d.TableID] = true
		}
	}
	sch = initialSchema(t, s, f, tenant)
	for _, d := range f.ddlsOf(tenant, 0, nil) {
		if d.CommitTs < from {
			sch.apply(d)
		}
	}
	for tb, in := range sch.db {
		if in == id {
			all[tb] = true
		}
	}
	for _, d := range ddls {
		if d.DBID == id && d.Action != "drop_table" {
			all[d.TableID] = true
		}
	}
	for tb := range all {
		if !moved[tb] {
			steady = append(steady, tb)
		}
	}
	slices.Sort(steady)
	return ddls, steady
}

// tableDDLs are the truth's DDLs a pull of table id from `from` gets: its
// own, and the truncate that replaces it.
func tableDDLs(f *fixture, tenant uint64, from uint64, id int64) []truth.DDL {
	var out []truth.DDL
	for _, d := range f.ddlsOf(tenant, from, nil) {
		if d.TableID == id || d.OldTableID == id {
			out = append(out, d)
		}
	}
	return out
}

// tableWithDDL picks a table of tenant 1 that exists at from, keeps its
// name and database (so pulls by name and by id agree) and is altered
// after it.
func tableWithDDL(t *testing.T, f *fixture, from uint64) int64 {
	exists := map[int64]bool{}
	renamedOrGone := map[int64]bool{}
	for _, d := range f.ddls {
		if d.Tenant != 1 {
			continue
		}
		if d.CommitTs < from {
			exists[d.TableID] = d.Action != "drop_table"
			exists[d.OldTableID] = false
			continue
		}
		switch d.Action {
		case "rename_table", "truncate_table", "drop_table":
			renamedOrGone[d.TableID], renamedOrGone[d.OldTableID] = true, true
		}
	}
	initial := map[int64]bool{}
	for _, d := range f.ddls {
		if d.Tenant == 1 && (d.Action == "add_column" || d.Action == "add_index" || d.Action == "drop_column") && d.CommitTs > from &&
			!renamedOrGone[d.TableID] {
			if created, known := exists[d.TableID]; (known && created) || (!known && initial[d.TableID] == false && isInitial(f, d.TableID)) {
				return d.TableID
			}
		}
	}
	t.Fatal("no table altered after the start ts")
	return 0
}

// isInitial: the table is in the schema snapshot (no truth DDL created it).
func isInitial(f *fixture, id int64) bool {
	for _, d := range f.ddls {
		if d.TableID == id && (d.Action == "create_table" || d.Action == "truncate_table") {
			return false
		}
	}
	return true
}
