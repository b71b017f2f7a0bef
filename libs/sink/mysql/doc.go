// Package mysqlsink is TiStream's reference CDC sink: it pulls a tenant (or
// one database) through the Go client (package client) and applies it to
// MySQL or MariaDB.
//
//   - Rows are applied in commit order, a resolved ts at a time: every row
//     up to a resolved ts in one downstream transaction, together with the
//     sink's checkpoint (the last resolved ts fully applied) in table
//     tistream_sink.checkpoint. A sink killed at any point resumes from
//     its checkpoint; rows are written as absolute values (REPLACE by
//     primary key, DELETE by primary key), so applying a transaction again
//     gives the same rows.
//   - DDLs are applied in order between the rows, each followed by a
//     checkpoint of its own position, so a restarted sink never applies a
//     row to a table whose DDL already ran; the statements are generated
//     from TiDB's TableInfo (CREATE TABLE, and ALTER TABLE from the
//     difference between two definitions), not rewritten from TiDB's SQL,
//     and can run twice (IF [NOT] EXISTS). What cannot be translated is
//     refused with an error naming the DDL.
//   - Every --syncpoint-interval of TSO time it records the resolved ts in
//     tistream_sink.syncpoint in the same transaction as the checkpoint: a
//     point where every table downstream is consistent with every other.
//   - The checkpoint row says applied_ts = resolved_ts while the
//     downstream is exactly at resolved_ts; it moves past it before
//     anything later is applied (a batch cut inside a resolved ts, a DDL's
//     first statement).
//   - TiDB's system databases (mysql, ...) are not replicated, and rows of a
//     table that does not exist at their commit ts (TiDB deleting a dropped
//     table's rows where the store has no delete-range) are passed.
package mysqlsink
