// Package etcdx is TiStream's use of etcd: the key layout under /tistream/v1/
// (docs/etcd-keys.md), typed protobuf values, worker registration with
// leases, the meta-server election, and an embedded etcd server for
// `tistream up`, `tistream etcd` and tests.
package etcdx
