package watermark

import (
	"encoding/binary"
	"hash/crc32"
	"maps"
	"slices"
)

// Snapshot encoding, version 3 (all integers uvarint, byte strings as
// uvarint length + bytes):
//
//	"TSWM" version(1 byte)
//	span start, span end (empty = unbounded), published, claims since sweep
//	counter count, counters
//	incarnation count, per incarnation (sorted by Ref):
//	  region id, version, term, latest, leader store, flags (1 = ended,
//	  2 = pending, 4 = no longer led by its store), start, end
//	  if pending: waiting count, refs (3 uvarints each); covered count, ranges
//	entry count, per entry: shared prefix length with the previous start,
//	  rest of the start, owner (0 = hole, i+1 = incarnation i), base
//	position count, per store (ascending): store, seq
//	held END count, per held END (by Ref): ref, final, proof count, proofs
//	  (store, through seq)
//	early END count, per early END (by Ref): ref, start, end, record count,
//	  per record: from store, final, proof count, proofs
//	CRC32C of everything before, 4 bytes little-endian
//
// Version 1 had no leader store, no positions and no held or early ENDs
// (13 counters); it still decodes, with every store unknown (trusted).
// Version 2 had neither flag 4 nor the Unled counter (18 counters); it
// still decodes. The groups of LeaderResolvedTs records (group.go) are not
// encoded: each incarnation's ts is written as it is now, and a decoded
// map's led incarnations join their store's group at its next record.
//
// Entry starts are prefix-compressed: neighbouring region boundaries of one
// table share most of their bytes.
const (
	codecMagic   = "TSWM"
	codecVersion = 3
	flagEnded    = 1
	flagPending  = 2
	flagUnled    = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the map's whole state (span, entries, incarnations
// with pending ones and their buffered ts, published watermark, counters).
func (m *Map) MarshalBinary() ([]byte, error) { return m.export().encode(), nil }

// UnmarshalBinary replaces m's state with a decoded one. Bad input returns an
// error wrapping ErrCorrupt and leaves m unchanged.
func (m *Map) UnmarshalBinary(b []byte) error {
	n, err := Decode(b)
	if err != nil {
		return err
	}
	*m = *n
	return nil
}

// Decode returns the map encoded by MarshalBinary.
func Decode(b []byte) (*Map, error) {
	s, err := decode(b)
	if err != nil {
		return nil, err
	}
	return build(s, false)
}

func (s *snapshot) encode() []byte { return s.encodeAs(codecVersion) }

// encodeAs writes encoding version v: 1 leaves out what version 2 added (it
// exists to test that old snapshots still decode).
func (s *snapshot) encodeAs(v byte) []byte {
	b := append([]byte(codecMagic), v)
	b = appendStr(b, s.start)
	b = appendStr(b, s.end)
	b = binary.AppendUvarint(b, s.published)
	b = binary.AppendUvarint(b, s.sinceSweep)
	cs := countersOf(&s.counters, v)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = binary.AppendUvarint(b, *c)
	}
	b = binary.AppendUvarint(b, uint64(len(s.incs)))
	for _, x := range s.incs {
		b = appendRef(b, x.ref)
		b = binary.AppendUvarint(b, x.latest)
		if v > 1 {
			b = binary.AppendUvarint(b, x.store)
		}
		var flags byte
		if x.ended {
			flags |= flagEnded
		}
		if x.pending {
			flags |= flagPending
		}
		if x.unled && v > 2 {
			flags |= flagUnled
		}
		b = append(b, flags)
		b = appendStr(b, x.start)
		b = appendStr(b, x.end)
		if !x.pending {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(x.waiting)))
		for _, w := range x.waiting {
			b = appendRef(b, w)
		}
		b = binary.AppendUvarint(b, uint64(len(x.covered)))
		for _, c := range x.covered {
			b = appendStr(b, c.start)
			b = appendStr(b, c.end)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.entries)))
	prev := ""
	for _, e := range s.entries {
		n := sharedPrefix(prev, e.start)
		b = binary.AppendUvarint(b, uint64(n))
		b = appendStr(b, e.start[n:])
		b = binary.AppendUvarint(b, uint64(e.owner+1))
		b = binary.AppendUvarint(b, e.base)
		prev = e.start
	}
	if v > 1 {
		b = s.appendSources(b)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func (s *snapshot) appendSources(b []byte) []byte {
	stores := slices.Sorted(maps.Keys(s.reads))
	b = binary.AppendUvarint(b, uint64(len(stores)))
	for _, st := range stores {
		b = binary.AppendUvarint(b, st)
		b = binary.AppendUvarint(b, s.reads[st])
	}
	held := slices.SortedFunc(maps.Keys(s.held), Ref.Compare)
	b = binary.AppendUvarint(b, uint64(len(held)))
	for _, r := range held {
		h := s.held[r]
		b = appendRef(b, r)
		b = binary.AppendUvarint(b, h.final)
		b = appendProofs(b, h.proofs)
	}
	early := slices.SortedFunc(maps.Keys(s.early), Ref.Compare)
	b = binary.AppendUvarint(b, uint64(len(early)))
	for _, r := range early {
		e := s.early[r]
		b = appendRef(b, r)
		b = appendStr(b, e.rng.start)
		b = appendStr(b, e.rng.end)
		b = binary.AppendUvarint(b, uint64(len(e.ends)))
		for _, rec := range e.ends {
			b = binary.AppendUvarint(b, rec.from)
			b = binary.AppendUvarint(b, rec.final)
			b = appendProofs(b, rec.proofs)
		}
	}
	return b
}

func appendProofs(b []byte, ps []Takeover) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = binary.AppendUvarint(b, p.Store)
		b = binary.AppendUvarint(b, p.ThroughSeq)
	}
	return b
}

func (d *decoder) sources(s *snapshot) {
	s.reads = make(map[uint64]uint64)
	for range d.count(2) {
		st, q := d.uvarint(), d.uvarint()
		if _, dup := s.reads[st]; dup && d.err == nil {
			d.fail("store position twice")
		}
		s.reads[st] = q
	}
	s.held = make(map[Ref]heldEnd)
	for range d.count(5) {
		r, final := d.ref(), d.uvarint()
		s.held[r] = heldEnd{final: final, proofs: d.proofs()}
	}
	s.early = make(map[Ref]earlyEnd)
	for range d.count(7) {
		r := d.ref()
		e := earlyEnd{rng: keyRange{d.str(), d.str()}}
		e.ends = make([]endRecord, d.count(3))
		for i := range e.ends {
			e.ends[i] = endRecord{from: d.uvarint(), final: d.uvarint(), proofs: d.proofs()}
		}
		s.early[r] = e
	}
}

func (d *decoder) proofs() []Takeover {
	ps := make([]Takeover, d.count(2))
	for i := range ps {
		ps[i] = Takeover{Store: d.uvarint(), ThroughSeq: d.uvarint()}
	}
	return ps
}

func decode(b []byte) (*snapshot, error) {
	if len(b) < len(codecMagic)+1+4 || string(b[:len(codecMagic)]) != codecMagic {
		return nil, corrupt("not a watermark snapshot")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corrupt("checksum mismatch")
	}
	v := body[len(codecMagic)]
	if v < 1 || v > codecVersion {
		return nil, corrupt("unknown version %d", v)
	}
	d := &decoder{b: body[len(codecMagic)+1:]}
	s := &snapshot{start: d.str(), end: d.str(), published: d.uvarint(), sinceSweep: d.uvarint()}
	cs := countersOf(&s.counters, v)
	if n := d.uvarint(); d.err == nil && n != uint64(len(cs)) {
		return nil, corrupt("%d counters, want %d", n, len(cs))
	}
	for _, c := range cs {
		*c = d.uvarint()
	}
	s.incs = make([]incState, d.count(4))
	for i := range s.incs {
		x := &s.incs[i]
		x.ref, x.latest = d.ref(), d.uvarint()
		if v > 1 {
			x.store = d.uvarint()
		}
		flags := d.byte()
		x.ended, x.pending, x.unled = flags&flagEnded != 0, flags&flagPending != 0, flags&flagUnled != 0
		known := byte(flagEnded | flagPending)
		if v > 2 {
			known |= flagUnled
		}
		if flags&^known != 0 {
			d.fail("unknown incarnation flags")
		}
		x.start, x.end = d.str(), d.str()
		if !x.pending {
			continue
		}
		x.waiting = make([]Ref, d.count(3))
		for j := range x.waiting {
			x.waiting[j] = d.ref()
		}
		x.covered = make([]keyRange, d.count(2))
		for j := range x.covered {
			x.covered[j] = keyRange{d.str(), d.str()}
		}
	}
	s.entries = make([]entryState, d.count(3))
	prev := ""
	for i := range s.entries {
		n := d.uvarint()
		if n > uint64(len(prev)) {
			d.fail("entry key prefix too long")
			break
		}
		start := prev[:n] + d.str()
		owner := d.uvarint()
		if owner > uint64(len(s.incs)) {
			d.fail("entry owner out of range")
			break
		}
		s.entries[i] = entryState{start: start, owner: int(owner) - 1, base: d.uvarint()}
		prev = start
	}
	if v > 1 {
		d.sources(s)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// countersOf lists the counters encoding version v carries.
func countersOf(c *Counters, v byte) []*uint64 {
	cs := c.list()
	switch v {
	case 1:
		return cs[:v1Counters]
	case 2:
		return cs[:v2Counters]
	}
	return cs
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRef(b []byte, r Ref) []byte {
	b = binary.AppendUvarint(b, r.RegionID)
	b = binary.AppendUvarint(b, r.Version)
	return binary.AppendUvarint(b, r.Term)
}

func sharedPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// decoder reads untrusted bytes: the first error sticks and every later read
// returns zero values, so decode checks once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = corrupt("%s", msg)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("truncated string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) ref() Ref { return Ref{d.uvarint(), d.uvarint(), d.uvarint()} }

// count reads an item count and bounds it by the bytes left (each item takes
// at least minBytes), so a hostile count cannot make a huge allocation.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)/minBytes) {
		d.fail("count exceeds input")
		return 0
	}
	return int(n)
}
