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
		df, err := OpenDataFile("fuzz", b)
		requireCorrupt(t, err)
		if err != nil {
			return
		}
		for {
			_, err := df.Next()
			if err == io.EOF {
				return
			}
			requireCorrupt(t, err)
			if err != nil {
				return
			}
		}
	})
}
