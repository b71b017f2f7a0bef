package sim

import (
	"strconv"

	"github.com/pingcap/kvproto/pkg/cdcpb"
	"github.com/tistream/tistream/libs/tidbcodec"
	"github.com/tistream/tistream/libs/truth"
)

// DDL actions, as the truth file names them.
const (
	ddlCreateTable = "create_table"
	ddlAddColumn   = "add_column"
	ddlDropTable   = "drop_table"
)

// startDDL runs one DDL statement as TiDB does underneath: a transaction on
// the meta range that writes the table's TableInfo JSON (or deletes it) and
// bumps the schema version. A table under DDL takes no writes, and a DDL only
// picks a table no transaction is writing, so rows never straddle a change.
func (s *Sim) startDDL(tn *tenant) {
	var (
		action string
		tb     *table
	)
	idle := func() *table {
		live := tn.liveTables()
		for tries := 0; tries < 8 && len(live) > 0; tries++ {
			if c := live[s.rng.IntN(len(live))]; c.inflight == 0 {
				return c
			}
		}
		return nil
	}
	switch p := s.rng.IntN(10); {
	case p < 4:
		action = ddlCreateTable
		tb = newTable(tn.nextID, tn.dbs[s.rng.IntN(len(tn.dbs))], s.cfg.ValueSize)
		tn.nextID++
	case p < 8:
		action, tb = ddlAddColumn, idle()
	default:
		if len(tn.liveTables()) > 1 {
			action, tb = ddlDropTable, idle()
		}
	}
	if tb == nil {
		return
	}
	t := &txn{tn: tn, kind: txnDDL, proto: proto2PC}
	version := tn.schemaVersion + 1
	key := tidbcodec.MetaTableKey(tb.db.id, tb.id)
	switch action {
	case ddlCreateTable:
		t.muts = append(t.muts, mutation{key: key, op: cdcpb.Event_Row_PUT})
	case ddlAddColumn:
		tb.ddlBusy = true
		tn.liveDirty = true
		t.muts = append(t.muts, mutation{key: key, op: cdcpb.Event_Row_PUT})
	case ddlDropTable:
		tb.ddlBusy = true
		tn.liveDirty = true
		t.muts = append(t.muts, mutation{key: key, op: cdcpb.Event_Row_DELETE})
	}
	t.muts = append(t.muts, mutation{key: tidbcodec.MetaSchemaVersionKey(), op: cdcpb.Event_Row_PUT,
		value: []byte(strconv.FormatInt(version, 10))})
	for _, m := range t.muts {
		if tn.busy[string(m.key)] {
			tb.ddlBusy = false // another DDL holds the meta keys; try later
			tn.liveDirty = true
			return
		}
	}
	for _, m := range t.muts {
		tn.busy[string(m.key)] = true
	}
	s.begin(t)
	// The new TableInfo is computed once the start ts is known (TiDB
	// stamps UpdateTS with the DDL transaction's start ts).
	next := *tb
	next.cols = append([]column(nil), tb.cols...)
	next.updateTS = t.startTs
	if action == ddlAddColumn {
		next.addColumn()
	}
	if action != ddlDropTable {
		t.muts[0].value = next.infoJSON()
	}
	t.onCommit = func(commitTs uint64) {
		tn.schemaVersion = version
		tn.ddlHistory = append(tn.ddlHistory, ddlPoint{commitTs: commitTs, version: version})
		switch action {
		case ddlCreateTable:
			tn.tables[tb.id] = tb
			tb.updateTS = next.updateTS
		case ddlAddColumn:
			tb.cols, tb.maxColID, tb.updateTS = next.cols, next.maxColID, next.updateTS
		case ddlDropTable:
			tb.dropped = true
		}
		tb.ddlBusy = false
		tn.liveDirty = true
		s.stats.DDLs++
		if s.opts.Truth != nil {
			if err := s.opts.Truth.WriteDDL(truth.DDL{Tenant: tn.id, CommitTs: commitTs, DBID: tb.db.id, TableID: tb.id,
				Action: action, SchemaVersion: version}); err != nil {
				s.fail(err)
			}
		}
	}
	s.stats.DDLStarted++
}
