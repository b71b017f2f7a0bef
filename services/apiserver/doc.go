// Package apiserver is TiStream's public API: TiStreamService over gRPC
// (proto/tistream/api/v1, docs/api.md). It serves ordered change streams of
// a table, a database or a whole tenant from any retained start ts — rows
// read from the committed data pool with pool.Puller, each paired with the
// schema version valid at its commit_ts, DDL events of the pulled tables in
// commit order among the rows, and resolved events — and follows new data
// until the client cancels. Schema comes from the schema registry
// (SchemaRegistryService); a row is sent only once the registry has read the
// schema at or past its commit_ts, so its schema version is final.
//
// Pulls of the same tables share their reads: every pull reads the pool
// through one bounded cache of decoded log entries and data files
// (pool.Cache), loaded once however many pulls miss the same object.
//
// The contract with the other services is docs/fleet.md ("api-server").
package apiserver
