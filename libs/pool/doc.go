// Package pool reads and writes the committed data pool: per tenant, a
// manifest of ranges, and per range an append-only log whose entries publish
// committed data files (rows ordered by commit_ts) and watermarks. The layout
// and formats are in docs/formats/committed-data-pool.md.
//
// The log is the only source of truth: its entries are created with
// put-if-absent, one writer per sequence number, so a stale owner (paused,
// partitioned, its lease expired) can write orphan files but can never
// publish anything a reader follows. Readers start at any ts with one short
// listing and follow new entries with one GET per poll.
package pool
