// Package watermark is the range watermark map of one sorter range (a span
// of raw TiDB keys): from the region incarnations' START, resolved ts and END
// records of all upstream store streams, read in any relative order, it
// computes the greatest ts at or below which every commit of every key of
// the span has been delivered.
//
// The span is tiled by entries (a B-tree by start key), each owned by one
// incarnation or by nobody (a hole, ts 0). An incarnation takes ("claims") a
// key only once the streams of its predecessors over that key, and of
// theirs, have been read to their END, and only from older incarnations:
// newer versions win wherever they overlap, whatever the arrival order. It
// keeps the ts the previous owner guaranteed until its own is higher. The
// watermark is the minimum ts over the entries, 0 while a hole remains; the
// published value never goes backwards.
//
// Readiness is decided per key, so a map behaves exactly like the
// restriction of a map of a larger span: predecessors outside the span (never
// routed here) hold nothing back, and Split and Merge are exact.
//
// Costs at n entries: Resolved is a table lookup plus a min-tree update that
// is O(1) expected and O(log n) at worst, however many entries the
// incarnation owns; Watermark is O(1); a claim of k entries is
// O((k+1) log n). A store's LeaderResolvedTs (LeaderResolvedFrom: every
// incarnation it leads but the listed ones at one ts) costs what changed
// since its previous one, not what it leads: the store's incarnations share
// one min-tree slot while their ts is the store's (group.go). Incarnations that are complete and own nothing are
// forgotten, so the table holds about one incarnation per live region.
//
// A Map is not safe for concurrent use. Input comes from decoded upstream
// files and is untrusted: bad records are ignored and counted (Stats), never
// a panic. docs/watermarks.md gives the protocol from the consumer's side,
// the argument for why the map is safe, and the gaps in the upstream spec.
package watermark
