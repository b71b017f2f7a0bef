package schema_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/formats/container"
	"github.com/tistream/tistream/libs/schema"
	"github.com/tistream/tistream/libs/tidbcodec"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, h := range map[string]*schema.History{"fixture": fixture(t), "ddl": ddlHistory(t), "empty": schema.New(3)} {
		t.Run(name, func(t *testing.T) {
			b, err := h.Encode()
			require.NoError(t, err)
			got, err := schema.Decode("h", b)
			require.NoError(t, err)
			require.Equal(t, h.Tenant, got.Tenant)
			require.Equal(t, h.BaseTs(), got.BaseTs())
			require.Equal(t, h.Floor(), got.Floor())
			require.Equal(t, h.LastApplied(), got.LastApplied())
			require.Equal(t, h.Resolved(), got.Resolved())
			require.Equal(t, h.Changes(0, ^uint64(0)), got.Changes(0, ^uint64(0)))
			for ts := h.Floor(); ts <= h.Resolved(); ts += 25 {
				require.Equal(t, answersAt(h, ts), answersAt(got, ts), "ts %d", ts)
			}
			again, err := got.Encode()
			require.NoError(t, err)
			require.Equal(t, b, again, "encoding is deterministic")
		})
	}
}

// A decoded history keeps following: the next transaction applies as it
// would have on the original.
func TestDecodedHistoryContinues(t *testing.T) {
	h := ddlHistory(t)
	got := clone(t, h)
	for _, x := range []*schema.History{h, got} {
		txn(t, x, 900, put(tidbcodec.MetaTableKey(2, 20), tableJSON(t, 20, "t20", 1)), version(14))
	}
	require.Equal(t, h.Changes(0, ^uint64(0)), got.Changes(0, ^uint64(0)))
	require.Equal(t, answersAt(h, 900), answersAt(got, 900))
}

func requireCorrupt(t *testing.T, err error, object string) *container.CorruptError {
	t.Helper()
	var ce *container.CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, object, ce.Object)
	return ce
}

func TestDecodeRejectsDamage(t *testing.T) {
	b, err := ddlHistory(t).Encode()
	require.NoError(t, err)
	const name = "schema_registry/tenant-7/00000000000000000800"
	for _, n := range []int{0, 10, len(b) / 2, len(b) - 1} {
		_, err := schema.Decode(name, b[:n])
		requireCorrupt(t, err, name)
	}
	for i := 0; i < len(b); i += 7 {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		_, err := schema.Decode(name, c)
		requireCorrupt(t, err, name)
	}
	_, err = schema.Decode(name, []byte("not a container at all, but long enough to be one"))
	requireCorrupt(t, err, name)
}

// records returns the raw records of an encoded history.
func records(t testing.TB, b []byte) [][]byte {
	r, err := container.Open("h", b, container.KindSchemaHistory)
	require.NoError(t, err)
	var out [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, bytes.Clone(rec))
	}
}

func wrap(t testing.TB, recs [][]byte) []byte {
	w := container.NewWriter(container.KindSchemaHistory, container.Options{})
	for _, r := range recs {
		require.NoError(t, w.Append(r))
	}
	b, err := w.Finish()
	require.NoError(t, err)
	return b
}

// Well-framed files whose records break the format's rules are corrupt too,
// and the error says which record and where.
func TestDecodeChecksRecords(t *testing.T) {
	b, err := ddlHistory(t).Encode()
	require.NoError(t, err)
	recs := records(t, b)
	header := func(mut func([]uint64)) []byte {
		f := []uint64{}
		rest := recs[0][1:]
		for len(rest) > 0 {
			v, n := binary.Uvarint(rest)
			f, rest = append(f, v), rest[n:]
		}
		mut(f)
		out := []byte{'H'}
		for _, v := range f {
			out = binary.AppendUvarint(out, v)
		}
		return out
	}
	swap := func(i, j int) [][]byte {
		c := append([][]byte(nil), recs...)
		c[i], c[j] = c[j], c[i]
		return c
	}
	last := len(recs) - 1
	for _, tc := range []struct {
		name string
		recs [][]byte
		want string
	}{
		{"no header", recs[1:], "first record is not the header"},
		{"format version", append([][]byte{header(func(f []uint64) { f[0] = 3 })}, recs[1:]...), "history format version 3"},
		{"floor below base", append([][]byte{header(func(f []uint64) { f[3] = 1 })}, recs[1:]...), "inconsistent ts"},
		{"counts", append([][]byte{header(func(f []uint64) { f[9]++ })}, recs[1:]...), "header counts"},
		{"sections out of order", swap(1, last), "record after"},
		{"changes out of order", swap(last-3, last), "out of commit order"},
		{"unknown tag", append(append([][]byte(nil), recs...), []byte{'Z'}), "unknown record tag"},
		{"trailing bytes", append(append([][]byte(nil), recs[:last]...), append(bytes.Clone(recs[last]), 0)), "bytes after the last field"},
		{"truncated field", append(append([][]byte(nil), recs[:last]...), recs[last][:3]), "change:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schema.Decode("obj", wrap(t, tc.recs))
			ce := requireCorrupt(t, err, "obj")
			require.ErrorContains(t, err, tc.want)
			require.GreaterOrEqual(t, ce.Offset, int64(0))
		})
	}
}

// FuzzDecode: no input panics; failures are CorruptErrors; what decodes
// re-encodes to a file that decodes to the same bytes again.
func FuzzDecode(f *testing.F) {
	for _, h := range []*schema.History{fixture(f), ddlHistory(f)} {
		b, err := h.Encode()
		require.NoError(f, err)
		f.Add(b)
		f.Add(wrap(f, records(f, b)))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// FuzzDecodeRecords frames the input's records (uvarint length + bytes)
// into a valid container, so mutations reach the record decoder instead of
// stopping at the checksums.
func FuzzDecodeRecords(f *testing.F) {
	for _, h := range []*schema.History{fixture(f), ddlHistory(f)} {
		b, err := h.Encode()
		require.NoError(f, err)
		var in []byte
		for _, r := range records(f, b) {
			in = binary.AppendUvarint(in, uint64(len(r)))
			in = append(in, r...)
		}
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var recs [][]byte
		for len(in) > 0 {
			n, k := binary.Uvarint(in)
			if k <= 0 || n > uint64(len(in)-k) {
				return
			}
			recs, in = append(recs, in[k:k+int(n)]), in[k+int(n):]
		}
		if len(recs) == 0 {
			return
		}
		checkDecode(t, wrap(t, recs))
	})
}

func checkDecode(t *testing.T, b []byte) {
	h, err := schema.Decode("fuzz", b)
	if err != nil {
		if !errors.Is(err, container.ErrCorrupt) {
			t.Fatalf("error is not a CorruptError: %v", err)
		}
		return
	}
	again, err := h.Encode()
	if err != nil {
		t.Fatalf("decoded history does not encode: %v", err)
	}
	h2, err := schema.Decode("again", again)
	if err != nil {
		t.Fatalf("re-encoded history does not decode: %v", err)
	}
	third, err := h2.Encode()
	if err != nil || !bytes.Equal(again, third) {
		t.Fatalf("re-encoding is not stable: %v", err)
	}
	_ = h2.Changes(0, ^uint64(0))
	_ = h2.DBs(h2.Resolved())
}
