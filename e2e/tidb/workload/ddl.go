package workload

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"
)

// DDL runs schema changes while a client keeps writing the tables they
// change: columns added and dropped, an index added (rows written in every
// intermediate state), tables created, renamed, truncated (a new table id)
// and dropped, a partitioned table with partitions added, truncated,
// dropped and exchanged with a table, databases created and dropped.
func DDL(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE ddl1",
		"CREATE TABLE ddl1.live (id BIGINT PRIMARY KEY, a INT, b VARCHAR(32))",
		"CREATE TABLE ddl1.p (id BIGINT PRIMARY KEY, v BIGINT) PARTITION BY RANGE (id) ("+
			"PARTITION p0 VALUES LESS THAN (1000), PARTITION p1 VALUES LESS THAN (2000))"); err != nil {
		return err
	}
	dml := func(rng *rand.Rand) error {
		id := rng.Intn(500)
		var err error
		switch rng.Intn(4) {
		case 0:
			_, err = env.DB.ExecContext(ctx, "REPLACE INTO ddl1.live (id, a, b) VALUES (?, ?, ?)", id, rng.Intn(1000), fmt.Sprint("b", id))
		case 1:
			_, err = env.DB.ExecContext(ctx, "UPDATE ddl1.live SET a = a + 1 WHERE id = ?", id)
		case 2:
			_, err = env.DB.ExecContext(ctx, "DELETE FROM ddl1.live WHERE id = ?", id)
		case 3:
			_, err = env.DB.ExecContext(ctx, "REPLACE INTO ddl1.p (id, v) VALUES (?, ?)", rng.Intn(3000), id)
		}
		return err
	}
	steps := []string{
		"ALTER TABLE ddl1.live ADD COLUMN c INT DEFAULT 7",
		"ALTER TABLE ddl1.live ADD INDEX ia (a)",
		"CREATE TABLE ddl1.t2 (id INT PRIMARY KEY, s VARCHAR(16))",
		"INSERT INTO ddl1.t2 VALUES (1, 'one'), (2, 'two'), (3, 'three')",
		"RENAME TABLE ddl1.t2 TO ddl1.t2r",
		"UPDATE ddl1.t2r SET s = 'uno' WHERE id = 1",
		"TRUNCATE TABLE ddl1.t2r",
		"INSERT INTO ddl1.t2r VALUES (4, 'four')",
		"ALTER TABLE ddl1.live DROP COLUMN b",
		"ALTER TABLE ddl1.p ADD PARTITION (PARTITION p2 VALUES LESS THAN (3000))",
		// REPLACE: the concurrent writes reach ids up to 3000 as soon as
		// p2 exists, and a long run leaves them time to write these.
		"REPLACE INTO ddl1.p VALUES (2500, 1), (2501, 2)",
		"ALTER TABLE ddl1.p TRUNCATE PARTITION p0",
		"CREATE TABLE ddl1.px (id BIGINT PRIMARY KEY, v BIGINT)",
		"INSERT INTO ddl1.px VALUES (1500, 15), (1501, 16)",
		"ALTER TABLE ddl1.p DROP PARTITION p1",
		"ALTER TABLE ddl1.p ADD PARTITION (PARTITION p3 VALUES LESS THAN (4000))",
		"DELETE FROM ddl1.px",
		"INSERT INTO ddl1.px VALUES (3500, 35), (3501, 36)",
		"ALTER TABLE ddl1.p EXCHANGE PARTITION p3 WITH TABLE ddl1.px",
		"CREATE DATABASE ddl2",
		"CREATE TABLE ddl2.x (id INT PRIMARY KEY)",
		"INSERT INTO ddl2.x VALUES (1), (2)",
		"DROP TABLE ddl1.t2r",
		"DROP DATABASE ddl2",
		"ALTER TABLE ddl1.live ADD COLUMN d VARCHAR(8) DEFAULT 'dd'",
	}
	writes, failed, err := ddlWhileDML(ctx, env, 7, dml, steps)
	rep.add("ddl: %d statements; %d concurrent writes (%d refused by the schema of the moment)", len(steps), writes, failed)
	return err
}

// ddlWhileDML runs the statements one after the other, spread over
// env.Duration, while a client runs dml in a loop (a write the schema of
// the moment refuses — a column or partition that does not exist yet —
// counts as failed, not as an error). It stops at the first statement that
// fails.
func ddlWhileDML(ctx context.Context, env Env, seed int64, dml func(*rand.Rand) error, steps []string) (writes, failed int64, err error) {
	stop := make(chan struct{})
	var w, f atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(seed))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if dml(rng) != nil {
				f.Add(1)
			} else {
				w.Add(1)
			}
		}
	}()
	pause := env.Duration / time.Duration(len(steps)+1)
	for _, s := range steps {
		if err = exec(ctx, env.DB, s); err != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	close(stop)
	wg.Wait()
	return w.Load(), f.Load(), err
}
