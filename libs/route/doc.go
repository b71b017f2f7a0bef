// Package route turns a store's change files into what each sorter range
// receives: rows routed by key to the range that owns it, and region changes
// and resolved ts routed to every range their region overlaps, with region
// boundaries decoded to raw TiDB keys and resolved ts tagged with the
// incarnation they belong to. The dispatcher service and the offline replay
// both use it, so they route identically.
package route
