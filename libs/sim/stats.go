package sim

import (
	"fmt"
	"io"
	"time"
)

// Stats counts what a run produced.
type Stats struct {
	SimTime  time.Duration
	WallTime time.Duration

	Txns          int64 // DML transactions started
	TwoPC         int64 // committed with 2PC
	AsyncCommit   int64
	OnePC         int64
	Rollbacks     int64
	LargeTxns     int64
	LongTxns      int64
	Prewrites     int64
	RowsCommitted int64 // table rows in the truth
	RowEvents     int64 // row entries written to change files
	DDLStarted    int64
	DDLs          int64 // committed DDL statements
	Splits        int64
	Merges        int64
	Transfers     int64
	Regions       int
	Inflight      int

	Files           int64
	Bytes           int64
	FinalResolvedTs uint64
}

// Print writes a short human summary.
func (st Stats) Print(w io.Writer) {
	fmt.Fprintf(w, "simulated %s in %s (%.1fx real time)\n", st.SimTime, st.WallTime.Round(time.Millisecond),
		st.SimTime.Seconds()/max(st.WallTime.Seconds(), 1e-9))
	fmt.Fprintf(w, "transactions  %d started: %d 2PC, %d async commit, %d 1PC, %d rolled back (%d large, %d long-running)\n",
		st.Txns, st.TwoPC, st.AsyncCommit, st.OnePC, st.Rollbacks, st.LargeTxns, st.LongTxns)
	fmt.Fprintf(w, "rows          %d committed row changes, %d prewrites, %d row events in files\n",
		st.RowsCommitted, st.Prewrites, st.RowEvents)
	fmt.Fprintf(w, "schema        %d DDL statements committed\n", st.DDLs)
	fmt.Fprintf(w, "regions       %d splits, %d merges, %d leader transfers; %d regions at the end\n",
		st.Splits, st.Merges, st.Transfers, st.Regions)
	fmt.Fprintf(w, "files         %d store change files, %.1f MiB\n", st.Files, float64(st.Bytes)/(1<<20))
	fmt.Fprintf(w, "final resolved ts %d (truth is complete at or below it)\n", st.FinalResolvedTs)
}
