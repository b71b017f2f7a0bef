// Package metaserver is TiStream's meta-server (docs/fleet.md, "meta-server"
// and "Range split and merge"): one leader at a time, elected through etcd,
// owns the fleet's assignments. It registers tenants (schema snapshot copied
// into the pool, manifest version 1, range tasks in etcd), records and
// forwards store file notifications, assigns ranges to sorters and streams to
// dispatchers and keeps them balanced, reports progress, and drives range
// splits and merges: it creates the children, waits for the parents' SEAL in
// the committed data pool, then publishes the next manifest and retires the
// parents.
//
// Every write the leader makes to etcd is a transaction that also compares
// its election key's create revision, so a deposed leader (paused past its
// session TTL, partitioned) cannot change anything; manifests are published
// with put-if-absent, so two leaders cannot both publish a version.
//
// The leader works from watched in-memory mirrors of etcd (workers, tenants,
// range tasks, stream tasks) and writes with compare-and-swap on each task's
// mod revision: a stale mirror costs a failed transaction and a retry at the
// next round, never a lost update.
package metaserver
