package capture

import "github.com/tistream/tistream/libs/formats/storeline"

// Stats counts what a capture saw and wrote.
type Stats struct {
	Prewrites, Commits, Committed, Rollbacks int64
	LockRefreshes                            int64
	LocksAtStart                             int
	SplitsFromTiDB, ChaosSplits              int64
	Merges, Transfers                        int64
	Cuts                                     int64
	DeleteRanges, WriteErrors                int64
	// Violations counts commits written at or below a resolved ts already
	// published for their key: it must stay 0.
	Violations int64
	// RPC outcomes seen by the client hijacker.
	AsyncCommitPrewrites, OnePCPrewrites, OnePCFallbacks int64
	CheckTxnStatus                                       map[string]int64
	ResolveLocks, CheckSecondaryLocks, HeartBeats        int64
	ReadsWaited                                          int64
	StaleLocksResolved                                   int64 // old locks the producer side resolved (see server.ResolveStaleLocks) // reads held by an in-flight async-commit or 1PC prewrite
	Regions, Locks                                       int
	LastResolvedMin                                      uint64
}

func (s *Stats) count(typ string) {
	switch typ {
	case storeline.RowPrewrite:
		s.Prewrites++
	case storeline.RowCommit:
		s.Commits++
	case storeline.RowCommitted:
		s.Committed++
	case storeline.RowRollback:
		s.Rollbacks++
	}
}
