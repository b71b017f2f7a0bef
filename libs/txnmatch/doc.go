// Package txnmatch is the prewrite buffer of one sorter range: it matches
// TiKV's Percolator row events (PREWRITE with the value, then COMMIT or
// ROLLBACK) by (key, start_ts) and emits each committed row once, with its
// commit_ts, to the range's sorter buffer.
//
// Events of one range come from several upstream stores in no fixed
// relative order (after a region split or a leader transfer the new
// leader's stream may be read first), so a commit or rollback can arrive
// before its prewrite: it then waits, and completes when the prewrite
// arrives. MinPendingCommit is the smallest commit_ts still waiting; the
// range must not flush past it.
//
// TiKV can also write several prewrites of one (key, start_ts): a lock
// refresh (a PUT with an empty value, re-sent by a heartbeat) and the
// generations of pipelined DML. The prewrite of highest rank (generation,
// then content over a refresh) wins in every arrival order, also when it
// arrives after its commit matched a lower one: the row is then emitted
// again with the same commit_ts, start_ts and key, which replaces it in the
// sorter buffer. Rows that can still be outranked are kept in a correction
// index until the range calls Forget after its flush (corrections.go).
//
// Duplicated deliveries of an event (a store file read twice after a
// restart) are harmless:
//   - a repeated prewrite is dropped (at equal rank the first is kept)
//     while its prewrite is pending or its row is in the correction index;
//     after an ordinary row was emitted it waits as a new prewrite, and a
//     repeated commit would emit the same row again;
//   - a repeated commit or rollback while the prewrite is pending does its
//     work once;
//   - a commit repeated after it matched is dropped if its row is in the
//     correction index; otherwise it finds no prewrite and becomes a
//     pending commit. The caller recognises it (its commit_ts is at or below
//     the range's flushed watermark, or sortbuf.Buffer.Has finds the row)
//     and removes it with DropPendingCommit, so that it does not hold the
//     range's flush back. A rollback repeated after it matched becomes a
//     pending rollback, which holds nothing back; Forget drops it once the
//     range publishes past its start_ts, as it drops the rollbacks that
//     never had a prewrite (failed prewrites, pessimistic and Lock-type
//     locks);
//   - a commit the caller knows is already published (at or below the
//     range's published watermark: re-sent by a new leader, or fed again
//     after a restore) goes to DropCommit, not Commit: its prewrite is
//     dropped, now or whenever it arrives, until Forget passes the
//     commit_ts.
//
// If a commit and a rollback of the same (key, start_ts) both wait, the
// commit wins: Percolator never produces both, and losing a row is worse
// than keeping one.
//
// Memory is bounded by a Budget shared by every matcher of the process.
// When in-memory prewrites push it over its limit, the matcher that added
// them moves whole transactions, the largest first, to its SpillStore (the
// range's space in the sorter's Pebble instances), and routes every later
// prewrite, commit and rollback of those transactions there. A million-row
// transaction thus costs a few bytes of memory (one entry in the set of
// spilled start_ts), not its size.
//
// A Matcher is used by one goroutine (its range's); the Budget is safe for
// concurrent use. Rows passed to emit are only valid during the call.
package txnmatch
