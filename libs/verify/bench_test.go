package verify

import (
	"bytes"
	"testing"
)

// BenchmarkCheck verifies a clean pull of about 220k rows against its truth;
// lines/s counts the lines of both inputs.
func BenchmarkCheck(b *testing.B) {
	h := generate(9, []int64{101, 102, 103, 104, 105, 106, 107, 108}, 60000)
	truthData := h.truthFile(b)
	pulledData := renderPulled(b, h.pulled)
	lines := bytes.Count(truthData, []byte("\n")) + bytes.Count(pulledData, []byte("\n"))
	b.SetBytes(int64(len(truthData) + len(pulledData)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Check(bytes.NewReader(truthData), bytes.NewReader(pulledData), Options{})
		if err != nil || !rep.OK() {
			b.Fatalf("clean stream: %v %v", err, rep.Violations)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
