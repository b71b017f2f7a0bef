// Package storeline is the store change line protocol: a dependency-free
// JSON Lines form of what TiKV stores push, that any upstream (a capture
// around an embedded TiDB, a prototype TiKV in another language) can write
// to a pipe and `tistream upstream` turns into store change files
// (docs/formats/store-change-lines.md).
//
// It is its own module with no dependencies so that a producer pinned to
// other versions of grpc, etcd or kvproto (TiDB's) can import it without
// bringing TiStream's service dependencies into its build, and TiStream can
// import it without bringing the producer's.
package storeline
