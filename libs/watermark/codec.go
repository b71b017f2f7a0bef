package watermark

import (
	"encoding/binary"
	"hash/crc32"
)

// Snapshot encoding, version 1 (all integers uvarint, byte strings as
// uvarint length + bytes):
//
//	"TSWM" version(1 byte)
//	span start, span end (empty = unbounded), published, claims since sweep
//	counter count, counters
//	incarnation count, per incarnation (sorted by Ref):
//	  region id, version, term, latest, flags (1 = ended, 2 = pending), start, end
//	  if pending: waiting count, refs (3 uvarints each); covered count, ranges
//	entry count, per entry: shared prefix length with the previous start,
//	  rest of the start, owner (0 = hole, i+1 = incarnation i), base
//	CRC32C of everything before, 4 bytes little-endian
//
// Entry starts are prefix-compressed: neighbouring region boundaries of one
// table share most of their bytes.
const (
	codecMagic   = "TSWM"
	codecVersion = 1
	flagEnded    = 1
	flagPending  = 2
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

func (s *snapshot) encode() []byte {
	b := append([]byte(codecMagic), codecVersion)
	b = appendStr(b, s.start)
	b = appendStr(b, s.end)
	b = binary.AppendUvarint(b, s.published)
	b = binary.AppendUvarint(b, s.sinceSweep)
	cs := s.counters.list()
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = binary.AppendUvarint(b, *c)
	}
	b = binary.AppendUvarint(b, uint64(len(s.incs)))
	for _, x := range s.incs {
		b = appendRef(b, x.ref)
		b = binary.AppendUvarint(b, x.latest)
		var flags byte
		if x.ended {
			flags |= flagEnded
		}
		if x.pending {
			flags |= flagPending
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
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decode(b []byte) (*snapshot, error) {
	if len(b) < len(codecMagic)+1+4 || string(b[:len(codecMagic)]) != codecMagic {
		return nil, corrupt("not a watermark snapshot")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corrupt("checksum mismatch")
	}
	if v := body[len(codecMagic)]; v != codecVersion {
		return nil, corrupt("unknown version %d", v)
	}
	d := &decoder{b: body[len(codecMagic)+1:]}
	s := &snapshot{start: d.str(), end: d.str(), published: d.uvarint(), sinceSweep: d.uvarint()}
	cs := s.counters.list()
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
		flags := d.byte()
		x.ended, x.pending = flags&flagEnded != 0, flags&flagPending != 0
		if flags&^(flagEnded|flagPending) != 0 {
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
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
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
