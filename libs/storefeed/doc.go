// Package storefeed turns a store change line stream (libs/formats/storeline,
// docs/formats/store-change-lines.md) into store change files: it checks
// each store's stream as a reader of the files would (a store writes rows
// and resolved ts only for regions it leads, starts a region it does not
// lead yet, ends only one it leads, max_ts covers the file), builds each
// file with libs/formats/storefile at every cut, uploads it with
// put-if-absent and notifies the meta-server. The schema snapshot line
// becomes the tenant's schema snapshot file, written before the tenant is
// registered.
//
// It is the door through which an upstream that is not built with
// TiStream's code — a capture around an embedded TiDB, whose module pins
// other grpc, etcd and kvproto versions, or a TiKV prototype in another
// language — writes the upstream contract with TiStream's own encoder.
package storefeed
