package workload

import (
	"context"
	"fmt"
	"math/rand"
)

// SinkDDL is DDL while DML runs, restricted to the DDL kinds `tistream
// sink mysql` applies (docs/consumers.md), in databases sinkddl and
// sinkddl2: add a column with a default, add and drop an index, modify
// columns (widening ones TiDB does in place, and one INT → VARCHAR that
// TiDB rewrites every row for, under a new column id), drop a column,
// create, rename (within and across databases), truncate and drop tables,
// a table without a primary key (rows keyed by _tidb_rowid), a
// range-partitioned table with a partition added, create and drop
// databases. Left out, because the sink refuses them: DROP PARTITION,
// TRUNCATE PARTITION, EXCHANGE PARTITION (the `ddl` workload has them).
func SinkDDL(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE sinkddl",
		"CREATE TABLE sinkddl.live (id BIGINT PRIMARY KEY, a INT, b VARCHAR(32), c INT)",
		"CREATE TABLE sinkddl.nopk (a INT, b VARCHAR(16))",
		"CREATE TABLE sinkddl.p (id BIGINT PRIMARY KEY, v BIGINT) PARTITION BY RANGE (id) ("+
			"PARTITION p0 VALUES LESS THAN (1000), PARTITION p1 VALUES LESS THAN (2000))"); err != nil {
		return err
	}
	dml := func(rng *rand.Rand) error {
		id := rng.Intn(500)
		var err error
		switch rng.Intn(7) {
		case 0:
			_, err = env.DB.ExecContext(ctx, "REPLACE INTO sinkddl.live (id, a) VALUES (?, ?)", id, rng.Intn(1000))
		case 1:
			_, err = env.DB.ExecContext(ctx, "UPDATE sinkddl.live SET a = a + 1, c = ? WHERE id = ?", rng.Intn(100000), id)
		case 2:
			_, err = env.DB.ExecContext(ctx, "UPDATE sinkddl.live SET b = ? WHERE id = ?", fmt.Sprint("b", rng.Intn(1000)), id)
		case 3:
			_, err = env.DB.ExecContext(ctx, "DELETE FROM sinkddl.live WHERE id = ?", id)
		case 4:
			_, err = env.DB.ExecContext(ctx, "REPLACE INTO sinkddl.p (id, v) VALUES (?, ?)", rng.Intn(3000), id)
		case 5:
			_, err = env.DB.ExecContext(ctx, "INSERT INTO sinkddl.nopk (a, b) VALUES (?, ?)", id, fmt.Sprint("n", id))
		case 6:
			if rng.Intn(2) == 0 {
				_, err = env.DB.ExecContext(ctx, "DELETE FROM sinkddl.nopk WHERE a = ?", id)
			} else {
				_, err = env.DB.ExecContext(ctx, "UPDATE sinkddl.nopk SET b = ? WHERE a = ?", fmt.Sprint("u", rng.Intn(100)), id)
			}
		}
		return err
	}
	steps := []string{
		"ALTER TABLE sinkddl.live ADD COLUMN e INT DEFAULT 7",
		"ALTER TABLE sinkddl.live ADD INDEX ia (a)",
		"CREATE TABLE sinkddl.t2 (id INT PRIMARY KEY, s VARCHAR(16))",
		"INSERT INTO sinkddl.t2 VALUES (1, 'one'), (2, 'two'), (3, 'three')",
		"RENAME TABLE sinkddl.t2 TO sinkddl.t2r",
		"UPDATE sinkddl.t2r SET s = 'uno' WHERE id = 1",
		"ALTER TABLE sinkddl.live MODIFY COLUMN a BIGINT",
		"TRUNCATE TABLE sinkddl.t2r",
		"INSERT INTO sinkddl.t2r VALUES (4, 'four'), (5, 'five')",
		"ALTER TABLE sinkddl.live MODIFY COLUMN b VARCHAR(64)",
		"ALTER TABLE sinkddl.p ADD PARTITION (PARTITION p2 VALUES LESS THAN (3000))",
		// REPLACE, as in ddl.go: the concurrent writes may have these ids.
		"REPLACE INTO sinkddl.p VALUES (2500, 1), (2501, 2)",
		"ALTER TABLE sinkddl.live MODIFY COLUMN c VARCHAR(20)",
		"ALTER TABLE sinkddl.nopk ADD COLUMN c DATETIME DEFAULT '2020-02-02 02:02:02'",
		"CREATE DATABASE sinkddl2",
		"RENAME TABLE sinkddl.t2r TO sinkddl2.moved",
		"INSERT INTO sinkddl2.moved VALUES (6, 'six')",
		"ALTER TABLE sinkddl.live DROP INDEX ia",
		"CREATE TABLE sinkddl2.gone (id INT PRIMARY KEY, v INT)",
		"INSERT INTO sinkddl2.gone VALUES (1, 1), (2, 2)",
		"DROP TABLE sinkddl2.gone",
		"ALTER TABLE sinkddl.live DROP COLUMN b",
		"CREATE DATABASE sinkddl3",
		"CREATE TABLE sinkddl3.x (id INT PRIMARY KEY)",
		"INSERT INTO sinkddl3.x VALUES (1), (2)",
		"DROP DATABASE sinkddl3",
		"ALTER TABLE sinkddl.live ADD COLUMN d VARCHAR(8) DEFAULT 'dd'",
		"ALTER TABLE sinkddl.live ADD UNIQUE INDEX ud (d, id)",
	}
	writes, failed, err := ddlWhileDML(ctx, env, 17, dml, steps)
	rep.add("ddl-sink: %d statements; %d concurrent writes (%d refused by the schema of the moment)", len(steps), writes, failed)
	return err
}
