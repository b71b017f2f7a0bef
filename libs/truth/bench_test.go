package truth

import (
	"bytes"
	"io"
	"testing"
)

// benchRows are rows shaped like TiDB record changes: a 19-byte record key
// and a row value of some tens of bytes.
func benchRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		key := []byte("t\x80\x00\x00\x00\x00\x00\x00\x65_r\x80\x00\x00\x00\x00\x00\x00\x00")
		key[18] = byte(i)
		rows[i] = Row{Tenant: 1, TableID: 101, CommitTs: 449000000000000000 + uint64(i), StartTs: 448999999999999000,
			Op: OpPut, Key: key, Value: bytes.Repeat([]byte{byte(i)}, 60)}
	}
	return rows
}

func BenchmarkWriteRow(b *testing.B) {
	rows := benchRows(1024)
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := w.WriteRow(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkReadRow(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, r := range benchRows(10000) {
		if err := w.WriteRow(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)) / 10000)
	b.ReportAllocs()
	var r *Reader
	for i := 0; b.Loop(); i++ {
		if i%10000 == 0 {
			r = NewReader(bytes.NewReader(data), "bench")
		}
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
