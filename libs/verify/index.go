package verify

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"

	"github.com/tistream/tistream/libs/truth"
)

// rowKey identifies a row change: (tenant, key, commit_ts), with the key as
// a hash so the map holds no pointers. Two keys would have to collide in 64
// bits at the same tenant and commit_ts (a handful of rows) to be confused,
// and lookups compare the stored key bytes anyway.
type rowKey struct {
	tenant, commitTs, keyHash uint64
}

// truthRow is what the index keeps of one truth row: enough to compare a
// pulled row and to describe a missing one. The value is only a hash.
type truthRow struct {
	tableID    int64
	startTs    uint64
	valueHash  uint64
	schemaVer  int64
	keyRef     uint64 // into the arena
	pulledLine int64  // the first pulled line carrying it; 0 until then
	truthLine  uint32
	delete     bool
	bad        bool // pulled with the wrong content or schema version
}

// index is the truth rows in scope. The map holds only a small slot index
// per row and the rows live in chunked slabs: the map stays compact for
// probing, a row found can be updated in place, and growing never copies
// the rows.
type index struct {
	seed  maphash.Seed
	ids   map[rowKey]uint32
	rows  slab
	arena arena
}

func newIndex() *index {
	return &index{seed: maphash.MakeSeed(), ids: make(map[rowKey]uint32, 1<<16)}
}

func (x *index) keyOf(tenant, commitTs uint64, key []byte) rowKey {
	return rowKey{tenant: tenant, commitTs: commitTs, keyHash: maphash.Bytes(x.seed, key)}
}

// add indexes a truth row; it returns the line of an earlier row with the
// same (tenant, key, commit_ts), if any, since a truth file must not have
// two.
func (x *index) add(r *truth.Row, line int64) (dup int64, ok bool) {
	k := x.keyOf(r.Tenant, r.CommitTs, r.Key)
	if id, found := x.ids[k]; found {
		return int64(x.rows.at(id).truthLine), false
	}
	x.ids[k] = x.rows.add(truthRow{
		tableID:   r.TableID,
		startTs:   r.StartTs,
		valueHash: maphash.Bytes(x.seed, r.Value),
		schemaVer: r.SchemaVersion,
		keyRef:    x.arena.add(r.Key),
		truthLine: uint32(line),
		delete:    r.Op == truth.OpDelete,
	})
	return 0, true
}

// lookup finds the truth row for a pulled row's (tenant, key, commit_ts).
func (x *index) lookup(r *truth.Row) (*truthRow, bool) {
	id, ok := x.ids[x.keyOf(r.Tenant, r.CommitTs, r.Key)]
	if !ok {
		return nil, false
	}
	e := x.rows.at(id)
	if !bytes.Equal(x.arena.get(e.keyRef), r.Key) {
		return nil, false
	}
	return e, true
}

// slab stores rows in fixed-size chunks addressed by a uint32 slot.
type slab struct {
	chunks [][]truthRow
}

const slabChunk = 1 << 16

func (s *slab) add(r truthRow) uint32 {
	n := len(s.chunks)
	if n == 0 || len(s.chunks[n-1]) == slabChunk {
		s.chunks = append(s.chunks, make([]truthRow, 0, slabChunk))
		n++
	}
	s.chunks[n-1] = append(s.chunks[n-1], r)
	return uint32((n-1)*slabChunk + len(s.chunks[n-1]) - 1)
}

func (s *slab) at(id uint32) *truthRow {
	return &s.chunks[id/slabChunk][id%slabChunk]
}

// maxTruthLine is the last truth line number truthRow can record; it also
// bounds the number of rows, so slab slots fit in uint32.
const maxTruthLine = math.MaxUint32

// arena stores keys back to back in large chunks, each prefixed with its
// length: millions of small allocations would cost a header each and make
// every garbage collection walk them.
type arena struct {
	chunks [][]byte
}

const arenaChunk = 1 << 20

// add copies b into the arena and returns a reference: chunk<<32 | offset.
func (a *arena) add(b []byte) uint64 {
	need := binary.MaxVarintLen64 + len(b)
	n := len(a.chunks)
	if n == 0 || cap(a.chunks[n-1])-len(a.chunks[n-1]) < need {
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, need)))
		n++
	}
	c := a.chunks[n-1]
	ref := uint64(n-1)<<32 | uint64(len(c))
	c = binary.AppendUvarint(c, uint64(len(b)))
	a.chunks[n-1] = append(c, b...)
	return ref
}

func (a *arena) get(ref uint64) []byte {
	c := a.chunks[ref>>32][uint32(ref):]
	n, w := binary.Uvarint(c)
	return c[w : w+int(n)]
}
