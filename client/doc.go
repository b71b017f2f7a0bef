// Package client is the Go client of TiStream's public API
// (tistream.api.v1.TiStreamService, docs/api.md): what a CDC sink or a
// TiFlash-like replica imports to read a tenant's ordered change streams.
//
//   - Pull opens a stream of a table, a database or a whole tenant from a
//     start ts. Stream.Next returns its events in order: rows, DDLs and
//     resolved ts. A broken stream or a restarted api-server is
//     reconnected (capped, jittered exponential backoff) and resumed from
//     the last resolved ts delivered; the rows the server sends again are
//     recognised and dropped, so nothing is lost and no row comes twice.
//     Events are read as the consumer asks for them, so a slow consumer
//     slows the server down (gRPC flow control) instead of filling memory.
//   - Errors that a retry cannot fix are typed: ErrNotFound, *OutOfRangeError
//     (with the oldest start ts the server still has), ErrUnauthenticated,
//     ErrInvalidArgument.
//   - Decoder turns a row's TiDB bytes into column names and typed values
//     (old values too), using the table's schema at the row's schema
//     version, learned from the stream's DDL events and ListTables.
//
// The package depends on gRPC, protobuf, the generated API and
// libs/tidbcodec only: importing it does not bring TiStream's servers, or
// their storage and etcd clients, into a consumer.
package client
