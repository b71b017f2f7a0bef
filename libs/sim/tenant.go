package sim

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"github.com/tistream/tistream/libs/formats/schemasnap"
	"github.com/tistream/tistream/libs/layout"
	"github.com/tistream/tistream/libs/tidbcodec"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
)

// firstObjectID is where a tenant's database and table ids start (TiDB
// reserves the small ids for system schemas).
const firstObjectID = 100

// tenant is one upstream keyspace: its schema, regions and store streams.
type tenant struct {
	id            uint64
	regions       *regionSet
	streams       []*stream // by store index
	dbs           []*database
	tables        map[int64]*table
	live          []*table // tables taking writes, by id; rebuilt when dirty
	liveDirty     bool
	nextID        int64           // TiDB's global id allocator
	busy          map[string]bool // keys of running transactions
	schemaVersion int64
	ddlHistory    []ddlPoint // schema version changes, ascending commit_ts
}

type ddlPoint struct {
	commitTs uint64
	version  int64
}

func (tn *tenant) liveTables() []*table {
	if tn.liveDirty {
		tn.live = liveTables(tn.tables)
		tn.liveDirty = false
	}
	return tn.live
}

// setLive puts t into the list of live tables (sorted by id) or takes it
// out, as a DDL changes it: at 1,000,000 tables, sorting the whole list
// again after each DDL was a sixth of the simulator's time. Taking t out
// leaves another table of its id (a DDL's new version of it) in place.
func (tn *tenant) setLive(t *table, live bool) {
	if tn.liveDirty {
		return // built whole at its next use
	}
	i, found := slices.BinarySearchFunc(tn.live, t.id, func(x *table, id int64) int { return cmp.Compare(x.id, id) })
	switch {
	case live && !found:
		tn.live = slices.Insert(tn.live, i, t)
	case !live && found && tn.live[i] == t:
		tn.live = slices.Delete(tn.live, i, i+1)
	}
}

// schemaVersionAt is the schema version valid for a row committed at ts:
// that of the last DDL committed at or before it.
func (tn *tenant) schemaVersionAt(ts uint64) int64 {
	i := sort.Search(len(tn.ddlHistory), func(i int) bool { return tn.ddlHistory[i].commitTs > ts })
	if i == 0 {
		return tn.ddlHistory[0].version
	}
	return tn.ddlHistory[i-1].version
}

func (s *Sim) peerID(regionID uint64, store int) uint64 { return regionID*16 + uint64(store) + 1 }

func (s *Sim) wire(r *region) *formatv1.RegionIncarnation { return r.incarnation(s.peerID, s.storeIDs) }

func (s *Sim) newRegionID() uint64 {
	s.nextReg++
	return s.nextReg
}

// peersFor picks the stores holding a region's peers: three, or all stores
// when there are fewer.
func (s *Sim) peersFor(leader int) []int {
	n := min(3, len(s.storeIDs))
	peers := []int{leader}
	for len(peers) < n {
		c := s.rng.IntN(len(s.storeIDs))
		dup := false
		for _, p := range peers {
			dup = dup || p == c
		}
		if !dup {
			peers = append(peers, c)
		}
	}
	return peers
}

// bootstrap creates tenants with their schema and initial regions, writes
// their schema snapshots and opens every store's first file with the
// bootstrap starts of the regions it leads.
func (s *Sim) bootstrap() error {
	snapTs := s.ts()
	for i := range s.cfg.Tenants {
		tn := &tenant{
			id:        max(s.cfg.FirstTenant, 1) + uint64(i),
			regions:   newRegionSet(),
			tables:    make(map[int64]*table),
			nextID:    firstObjectID,
			busy:      make(map[string]bool),
			liveDirty: true,
		}
		for _, id := range s.storeIDs {
			tn.streams = append(tn.streams, newStream(id, &s.cfg))
		}
		for d := range s.cfg.DBs {
			tn.dbs = append(tn.dbs, &database{id: tn.nextID, name: fmt.Sprintf("db%d", d+1)})
			tn.nextID++
		}
		ids := make([]int64, 0, s.cfg.Tables)
		for range s.cfg.Tables {
			t := newTable(tn.nextID, tn.dbs[len(ids)%len(tn.dbs)], s.cfg.ValueSize)
			t.updateTS = snapTs
			tn.tables[t.id] = t
			ids = append(ids, t.id)
			tn.nextID++
		}
		tn.schemaVersion = 1
		tn.ddlHistory = []ddlPoint{{commitTs: 0, version: 1}}
		s.initialRegions(tn, ids)
		if err := s.writeSchemaSnapshot(tn, snapTs); err != nil {
			return err
		}
		if s.opts.OnTenant != nil {
			if err := s.opts.OnTenant(s.ctx, s.cfg.ClusterID, tn.id); err != nil {
				return fmt.Errorf("sim: register tenant %d: %w", tn.id, err)
			}
		}
		s.tenants = append(s.tenants, tn)
	}
	return nil
}

// initialRegions covers the key space: boundaries at table prefixes, tables
// grouped evenly, then the biggest ranges split by handle until there are
// cfg.Regions regions. Leaders are spread round-robin.
func (s *Sim) initialRegions(tn *tenant, tableIDs []int64) {
	n := s.cfg.Regions
	var bounds [][]byte // region start keys after the first, which holds the meta range
	groups := min(n-1, len(tableIDs))
	for g := range groups {
		bounds = append(bounds, tidbcodec.TablePrefix(tableIDs[g*len(tableIDs)/groups]))
	}
	// The remaining regions split tables' record spans at handle quantiles.
	if extra := n - 1 - groups; extra > 0 {
		perTable := (extra + len(tableIDs) - 1) / len(tableIDs)
		for k := range extra {
			q := int64(k/len(tableIDs) + 1)
			bounds = append(bounds, tidbcodec.EncodeRecordKey(tableIDs[k%len(tableIDs)], q*(maxHandle/int64(perTable+1))))
		}
	}
	sort.Slice(bounds, func(i, j int) bool { return string(bounds[i]) < string(bounds[j]) })
	start := []byte{}
	for i := 0; i <= len(bounds); i++ {
		var end []byte
		if i < len(bounds) {
			if end = bounds[i]; string(end) == string(start) {
				continue
			}
		}
		leader := int(s.nextReg) % len(s.storeIDs)
		r := &region{id: s.newRegionID(), start: start, end: end, version: 1, confVer: 1, term: firstTerm,
			leader: leader, peers: s.peersFor(leader)}
		tn.regions.add(r)
		s.startIncarnation(tn, r, formatv1.RegionChange_REASON_BOOTSTRAP, nil)
		start = end
	}
}

func (s *Sim) writeSchemaSnapshot(tn *tenant, ts uint64) error {
	w, err := schemasnap.NewWriter(&formatv1.SchemaSnapshotHeader{
		ClusterId: s.cfg.ClusterID, TenantId: tn.id, Ts: ts, SchemaVersion: tn.schemaVersion,
		CreatedUnixMs: s.physNow(), DbCount: uint64(len(tn.dbs)), TableCount: uint64(len(tn.tables)),
	})
	if err != nil {
		return err
	}
	for _, db := range tn.dbs {
		if err := w.AddDatabase(db.id, db.infoJSON()); err != nil {
			return err
		}
		for _, t := range sortedTables(tn.tables) {
			if t.db == db {
				if err := w.AddTable(db.id, t.infoJSON()); err != nil {
					return err
				}
			}
		}
	}
	b, err := w.Finish()
	if err != nil {
		return err
	}
	key := layout.SchemaSnapshotKey(s.cfg.ClusterID, tn.id, ts)
	if err := s.opts.Store.PutIfAbsent(s.ctx, key, b); err != nil {
		return fmt.Errorf("sim: write schema snapshot: %w", err)
	}
	s.stats.Bytes += int64(len(b))
	return nil
}

func sortedTables(m map[int64]*table) []*table {
	out := make([]*table, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *Sim) writeFile(tn *tenant, st *stream, h *formatv1.StoreFileHeader, b []byte) error {
	key := layout.StoreFileKey(s.cfg.ClusterID, tn.id, st.storeID, h.Seq, h.MaxTs)
	if err := s.opts.Store.PutIfAbsent(s.ctx, key, b); err != nil {
		return fmt.Errorf("sim: write %s: %w (is the store already holding files of this cluster?)", key, err)
	}
	if s.opts.OnFile != nil {
		if err := s.opts.OnFile(s.ctx, key, h); err != nil {
			return fmt.Errorf("sim: notify %s: %w", key, err)
		}
	}
	return nil
}
