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

	Txns        int64 // DML transactions started
	TwoPC       int64 // committed with 2PC
	AsyncCommit int64
	OnePC       int64
	Rollbacks   int64
	// OrphanRollbacks are rolled-back transactions with no PREWRITE in
	// the stream (ROLLBACK rows only).
	OrphanRollbacks int64
	LargeTxns       int64
	LongTxns        int64
	Prewrites       int64
	RowsCommitted   int64 // table rows in the truth
	RowEvents       int64 // row entries written to change files
	DDLStarted      int64
	DDLs            int64 // committed DDL statements
	Splits          int64
	Merges          int64
	Transfers       int64
	Regions         int

	// Store crashes, restarts and the takeovers of the crashed stores'
	// incarnations (Takeovers counts new leaders taking a region over;
	// each is partial or full, and cascaded when it takes over what an
	// earlier takeover lost in a second crash; TakeoverEnds counts the
	// takeover ENDs uploaded).
	Crashes           int64
	Restarts          int64
	Takeovers         int64
	TakeoversPartial  int64
	TakeoversFull     int64
	TakeoversCascaded int64
	// TakeoversOfLostEnds: the leader of a transfer's or merge's successor
	// in another store takes over the predecessor whose END a crash lost.
	TakeoversOfLostEnds int64
	// ENDs of splits, merges (and rolled back merges) and transfers lost in
	// crashes.
	LostSplits     int64
	LostMergeEnds  int64
	LostTransfers  int64
	TakeoverEnds   int64
	RollbackMerges int64

	Heartbeats         int64 // lock refreshes: PREWRITEs with an empty PUT value
	LockRewrites       int64 // min_commit_ts pushes: PREWRITEs again, with the value when short
	PipelinedTxns      int64
	PipelinedPrewrites int64 // prewrites of generation 2 and above
	Inflight           int

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
	if st.RollbackMerges > 0 {
		fmt.Fprintf(w, "              %d merges rolled back\n", st.RollbackMerges)
	}
	if st.Crashes > 0 {
		fmt.Fprintf(w, "crashes       %d store crashes, %d restarts; %d takeovers (%d partial, %d full, %d cascaded, %d of lost ENDs), %d takeover ENDs\n",
			st.Crashes, st.Restarts, st.Takeovers, st.TakeoversPartial, st.TakeoversFull, st.TakeoversCascaded, st.TakeoversOfLostEnds, st.TakeoverEnds)
		fmt.Fprintf(w, "              lost with the crashes: %d split, %d merge and %d transfer ENDs\n", st.LostSplits, st.LostMergeEnds, st.LostTransfers)
	}
	if st.Heartbeats > 0 || st.PipelinedTxns > 0 {
		fmt.Fprintf(w, "locks         %d lock refreshes, %d min_commit_ts rewrites, %d pipelined transactions (%d prewrites of later generations)\n",
			st.Heartbeats, st.LockRewrites, st.PipelinedTxns, st.PipelinedPrewrites)
	}
	if st.OrphanRollbacks > 0 {
		fmt.Fprintf(w, "              %d rolled-back transactions with no PREWRITE in the stream\n", st.OrphanRollbacks)
	}
	fmt.Fprintf(w, "files         %d store change files, %.1f MiB\n", st.Files, float64(st.Bytes)/(1<<20))
	fmt.Fprintf(w, "final resolved ts %d (truth is complete at or below it)\n", st.FinalResolvedTs)
}
