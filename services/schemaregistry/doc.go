// Package schemaregistry is the schema registry service (docs/fleet.md,
// "schema-registry"): for every tenant registered in etcd it keeps a
// multi-version schema history (libs/schema), restored from its last
// persisted copy in object storage or built from the pool's schema
// snapshot, and kept up to date by following the meta range of the
// committed data pool in commit order. It persists each history
// periodically (docs/formats/schema-history.md), drops versions older than
// the retention window, and answers SchemaRegistryService: a table's
// schema, the databases and a database's tables at a ts, and the schema
// changes in a ts interval.
//
// A history answers for ts in [floor, resolved]: below the floor the
// versions were dropped (OUT_OF_RANGE); above the resolved ts the registry
// has not read the meta range that far (FAILED_PRECONDITION, retry).
package schemaregistry
