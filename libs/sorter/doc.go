// Package sorter is the ordering core of one sorter range: it applies the
// routed events of every upstream store (route.Batch) to a transaction
// matcher (prewrites meet their commits in any order), a sorted buffer on
// Pebble (committed rows in commit order) and a watermark map (region
// incarnations' resolved ts), and flushes the rows at or below the range's
// watermark to the committed data pool. Snapshots in object storage let a
// range resume exactly where it was on another sorter.
package sorter
