// Package schema keeps a tenant's multi-version schema: built from a schema
// snapshot plus the committed changes of TiDB's meta range (hash DBs field
// DB:{id} holds DBInfo JSON, hash DB:{dbID} field Table:{id} holds TableInfo
// JSON, SchemaVersionKey holds the schema version), it answers "which
// databases and tables, with which TableInfo, at ts" and "which schema
// version was valid at ts". The schema registry service hosts it; offline
// tools build it from the committed data pool.
package schema
