package pool

import (
	"errors"
	"io"
	"testing"

	"github.com/tistream/tistream/libs/formats/container"
	formatv1 "github.com/tistream/tistream/proto/gen/go/tistream/format/v1"
	"google.golang.org/protobuf/proto"
)

// wrap puts fuzzed record bytes in a valid container so the fuzzer gets past
// the checksums and exercises the message decoding and rule checks.
func wrap(kind container.Kind, recs ...[]byte) []byte {
	w := container.NewWriter(kind, container.Options{})
	for _, r := range recs {
		if w.Append(r) != nil {
			return nil
		}
	}
	b, err := w.Finish()
	if err != nil {
		return nil
	}
	return b
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func requireCorrupt(t *testing.T, err error) {
	if err != nil && !errors.Is(err, container.ErrCorrupt) {
		t.Fatalf("error is not a CorruptError: %v", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(mustMarshal(&formatv1.RangeLogEntry{TenantId: 1, RangeId: 2, Seq: 3, Kind: formatv1.RangeLogEntry_KIND_FLUSH,
		PrevWatermark: 10, Watermark: 20, File: &formatv1.CommittedFileRef{Key: "k", RowCount: 1, MinCommitTs: 11, MaxCommitTs: 20}}))
	f.Add(mustMarshal(&formatv1.RangeLogEntry{Seq: 1, Kind: formatv1.RangeLogEntry_KIND_OPEN}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		b := wrap(container.KindRangeLog, rec)
		if b == nil {
			return
		}
		e, err := DecodeEntry("fuzz", b)
		requireCorrupt(t, err)
		if err == nil {
			if e.Seq == 0 || e.Watermark < e.PrevWatermark {
				t.Fatalf("accepted an entry breaking the log rules: %v", e)
			}
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(mustMarshal(&formatv1.Manifest{TenantId: 1, Version: 1, NextRangeId: 2, Ranges: []*formatv1.RangeDescriptor{
		{RangeId: 1, State: formatv1.RangeDescriptor_STATE_ACTIVE}}}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		b := wrap(container.KindManifest, rec)
		if b == nil {
			return
		}
		_, err := DecodeManifest("fuzz", b)
		requireCorrupt(t, err)
	})
}

func FuzzDataFile(f *testing.F) {
	h := mustMarshal(&formatv1.CommittedFileHeader{TenantId: 1, RangeId: 1, Seq: 2, PrevWatermark: 10, Watermark: 20})
	f.Add(h, mustMarshal(&formatv1.CommittedRow{CommitTs: 15, StartTs: 12, Op: formatv1.Op_OP_PUT, Key: []byte("t1"), Value: []byte("v")}))
	f.Fuzz(func(t *testing.T, hdr, row []byte) {
		b := wrap(container.KindCommittedData, hdr, row, row)
		if b == nil {
			return
		}
		// The cache's decoder, sharing the file's bytes or copying them,
		// takes or refuses exactly the same files (a bad trailer count
		// must not reserve memory for it).
		_, _, errOwn := decodeFile("fuzz", b, true, nil)
		requireCorrupt(t, errOwn)
		_, _, errCopy := decodeFile("fuzz", b, false, nil)
		if (errOwn == nil) != (errCopy == nil) {
			t.Fatalf("sharing the bytes: %v; copying them: %v", errOwn, errCopy)
		}
		df, err := OpenDataFile("fuzz", b)
		requireCorrupt(t, err)
		if err != nil {
			return
		}
		for {
			_, err := df.Next()
			if err == io.EOF {
				if errOwn != nil {
					t.Fatalf("the data file reads, the cache's decoder refused it: %v", errOwn)
				}
				return
			}
			requireCorrupt(t, err)
			if err != nil {
				return
			}
		}
	})
}

// samplePub is a valid publication: three members, one with a section.
func samplePub() *formatv1.GroupPublication {
	return &formatv1.GroupPublication{TenantId: 1, Group: "s1-1-1", Seq: 7, Kind: formatv1.GroupPublication_KIND_PUBLISH,
		Owner: "s1", CreatedUnixMs: 1, MemberRuns: encodeRuns([]uint64{2, 3, 9}), DefaultPrevWatermark: 10, DefaultWatermark: 20,
		Ranges: []*formatv1.GroupRangeState{{RangeId: 3, PrevWatermark: 12, Watermark: 18,
			Section: &formatv1.GroupSection{Offset: 0, Length: 40, RowCount: 2, MinCommitTs: 13, MaxCommitTs: 18}}}}
}

// The decoder of publication indexes never panics and refuses what breaks
// the rules with a container.ErrCorrupt; what it accepts is consistent.
func FuzzDecodePubIndex(f *testing.F) {
	f.Add(mustMarshal(samplePub()), []byte("data"))
	f.Add(mustMarshal(&formatv1.GroupPublication{TenantId: 1, Group: "g", Seq: 2, Kind: formatv1.GroupPublication_KIND_FENCE,
		Fences: []*formatv1.GroupFence{{RangeId: 4, OwnerEpoch: 3}}}), []byte(nil))
	f.Fuzz(func(t *testing.T, rec, data []byte) {
		b := wrap(container.KindGroupPub, rec)
		if b == nil {
			return
		}
		p, n, err := DecodePubIndex("fuzz", append(b, data...))
		requireCorrupt(t, err)
		if err != nil {
			return
		}
		if n != int64(len(b)) {
			t.Fatalf("index of %d bytes measured as %d", len(b), n)
		}
		for _, id := range p.Members() {
			if st, ok := p.State(id); !ok || st.Watermark < st.Prev {
				t.Fatalf("member %d: %v %v", id, st, ok)
			}
		}
	})
}

// The decoder of segment indexes: likewise.
func FuzzDecodeSegmentIndex(f *testing.F) {
	h := mustMarshal(&formatv1.GroupSegmentHeader{TenantId: 1, Group: "s1-1-1", FirstSeq: 7, LastSeq: 8})
	p7 := samplePub()
	p8 := samplePub()
	p8.Seq = 8
	f.Add(h, mustMarshal(p7), mustMarshal(p8))
	f.Fuzz(func(t *testing.T, hdr, a, b []byte) {
		obj := wrap(container.KindGroupSegment, hdr, a, b)
		if obj == nil {
			return
		}
		s, _, err := DecodeSegmentIndex("fuzz", obj)
		requireCorrupt(t, err)
		if err != nil {
			return
		}
		for seq := s.Header.FirstSeq; seq <= s.Header.LastSeq; seq++ {
			if p := s.Pub(seq); p == nil || p.Seq != seq {
				t.Fatalf("publication %d missing", seq)
			}
		}
	})
}
