// Package pool reads and writes the committed data pool: per tenant, a
// manifest of ranges; per range an append-only log saying which group
// publishes it from which publication on (OPEN, TAKEOVER, SEAL); per sorter
// process and tenant a group, whose publications carry the watermarks of
// all its ranges and their rows, and whose segments regroup the rows of
// many publications range by range. The layout and formats are in
// docs/formats/committed-data-pool.md (format 2; format 1 pools, with a
// FLUSH entry and a data file per range and flush, are still read).
//
// Range log entries and publications are created with put-if-absent, one
// writer per sequence number. A new owner of a range fences it in the
// group that published it (a FENCE publication at the group's next seq)
// before its TAKEOVER entry, so a stale owner (paused, partitioned, its
// lease expired) can never publish the range again where readers follow
// it. Readers start at any ts with a few listings and follow with one GET
// per publication of each group, shared by every range of the group
// through the cache.
package pool
