// Package replay runs the ordering core offline over a whole data change
// buffer: it reads each store's files in sequence order, routes every event
// by key to the tenant's ranges as the dispatcher does, applies them to the
// sorter ranges and flushes to a committed data pool up to the final
// watermark. Its delivery order across stores and its snapshot-and-restore
// chaos are seeded, so tests can replay one history under many arrival
// orders and crashes.
package replay
