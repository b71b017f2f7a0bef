package workload

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"time"
)

// typesColumns is types.t: a column of every type `tistream sink mysql`
// translates. JSON is left out: the sink refuses it (docs/consumers.md).
const typesColumns = `id BIGINT PRIMARY KEY,
  ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(20,6), dec2 DECIMAL(5,0),
  dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL, da DATE, tm TIME, tm3 TIME(3), y YEAR,
  ch CHAR(10), vc VARCHAR(100), vb VARBINARY(20), bn BINARY(4), tx TEXT, bl BLOB,
  en ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10),
  ci VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`

const typesRows = 300

// Types writes rows with a value of every column type the MySQL sink
// translates, edge values and NULLs among them, and keeps replacing,
// updating and deleting them for env.Duration; beside it a table with a
// clustered VARCHAR primary key (puts only: the capture writes no old
// values, without which the sink cannot delete a clustered row) and one
// with a non-clustered primary key (rows keyed by _tidb_rowid).
func Types(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE IF NOT EXISTS types",
		"CREATE TABLE types.t ("+typesColumns+")",
		"CREATE TABLE types.ck (k VARCHAR(20) PRIMARY KEY CLUSTERED, v INT, s VARCHAR(10))",
		"CREATE TABLE types.nc (k VARCHAR(20) PRIMARY KEY NONCLUSTERED, v INT)"); err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(11))
	insert := "REPLACE INTO types.t VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(typesRow(rand.New(rand.NewSource(0)), 0))), ", ") + ")"
	for id := range typesRows {
		if _, err := env.DB.ExecContext(ctx, insert, typesRow(rng, id)...); err != nil {
			return fmt.Errorf("%s: %w", insert, err)
		}
	}
	var puts, updates, deletes, others int
	deadline := time.Now().Add(env.Duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		id := rng.Intn(typesRows + 100)
		var err error
		switch op := rng.Intn(10); {
		case op < 4:
			_, err = env.DB.ExecContext(ctx, insert, typesRow(rng, id)...)
			puts++
		case op < 6:
			_, err = env.DB.ExecContext(ctx, "UPDATE types.t SET dec1 = dec1 + 0.000001, dt6 = DATE_ADD(dt6, INTERVAL 1 MICROSECOND), vc = CONCAT('u', id), bt = bt ^ 1 WHERE id = ?", id)
			updates++
		case op < 7:
			_, err = env.DB.ExecContext(ctx, "DELETE FROM types.t WHERE id = ?", id)
			deletes++
		case op < 9:
			_, err = env.DB.ExecContext(ctx, "REPLACE INTO types.ck VALUES (?, ?, ?)", fmt.Sprintf("k%03d é", rng.Intn(50)), rng.Int31(), randString(rng, 10))
			others++
		default:
			k := fmt.Sprintf("n%02d", rng.Intn(30))
			switch rng.Intn(3) {
			case 0:
				_, err = env.DB.ExecContext(ctx, "REPLACE INTO types.nc VALUES (?, ?)", k, rng.Intn(1000))
			case 1:
				_, err = env.DB.ExecContext(ctx, "UPDATE types.nc SET v = v + 1 WHERE k = ?", k)
			case 2:
				_, err = env.DB.ExecContext(ctx, "DELETE FROM types.nc WHERE k = ?", k)
			}
			others++
		}
		if err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep.add("types: %d rows of every translatable type, then %d replaces, %d updates, %d deletes; %d writes of the clustered and rowid tables",
		typesRows, puts, updates, deletes, others)
	return nil
}

// typesRow is a row of types.t: random values, a few at the edges of their
// type, a NULL in about one column of ten. FLOAT and DOUBLE stay where
// TiDB's and MariaDB's CONCAT write them alike (no exponent): the check's
// checksum hashes each server's own text of the values.
func typesRow(rng *rand.Rand, id int) []any {
	pick := func(vals ...any) any { return vals[rng.Intn(len(vals))] }
	date := func() string {
		return fmt.Sprintf("%04d-%02d-%02d", 1000+rng.Intn(9000), 1+rng.Intn(12), 1+rng.Intn(28))
	}
	clock := func() string { return fmt.Sprintf("%02d:%02d:%02d", rng.Intn(24), rng.Intn(60), rng.Intn(60)) }
	bytes := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	sign := pick(1, -1).(int)
	row := []any{
		id,
		pick(-128, 127, 0, rng.Intn(256)-128),
		pick(0, 65535, rng.Intn(65536)),
		rng.Intn(1<<24) - 1<<23,
		pick(-2147483648, 2147483647, rng.Int31()),
		pick("0", "18446744073709551615", fmt.Sprint(rng.Uint64())),
		pick(0.0, float64(rng.Intn(12800000)-6400000)/64, 0.1, -1.5),
		pick(0.0, rng.NormFloat64()*1e9, 987654321098765.4, -0.000123456789012345, 1.0/3),
		fmt.Sprintf("%d.%06d", sign*int(rng.Int63n(1e13)), rng.Intn(1e6)),
		pick("99999", "-99999", fmt.Sprint(rng.Intn(199999)-99999)),
		pick("1000-01-01 00:00:00", "9999-12-31 23:59:59", date()+" "+clock()),
		fmt.Sprintf("%s %s.%06d", date(), clock(), rng.Intn(1e6)),
		pick("1970-01-01 00:00:01.000", "2038-01-19 03:14:07.999", fmt.Sprintf("20%02d-%02d-%02d %s.%03d", rng.Intn(37), 1+rng.Intn(12), 1+rng.Intn(28), clock(), rng.Intn(1000))),
		date(),
		pick("-838:59:59", "838:59:59", "00:00:00", fmt.Sprintf("%d:%02d:%02d", rng.Intn(1600)-800, rng.Intn(60), rng.Intn(60))),
		fmt.Sprintf("%s.%03d", clock(), rng.Intn(1000)),
		pick(1901, 2155, 1970+rng.Intn(100)),
		pick("", "a", "trailing  ", " lead", randString(rng, 10)),
		pick("héllo ✓ 日本語", "", "quote ' and \\ backslash", randString(rng, 100)),
		pick([]byte{}, []byte{0}, bytes(rng.Intn(21))),
		pick([]byte("ab"), []byte{0, 0xff}, bytes(4)),
		strings.Repeat(randString(rng, 50), rng.Intn(40)),
		bytes(rng.Intn(300)),
		pick("a", "b", "c"),
		pick("", "x", "y,z", "x,y,z"),
		rng.Intn(1024),
		pick("MiXeD", "ÅÄÖ", randString(rng, 20)),
	}
	for i := 1; i < len(row); i++ {
		if rng.Intn(10) == 0 {
			row[i] = nil
		}
	}
	return row
}

func randString(rng *rand.Rand, max int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-"
	b := make([]byte, rng.Intn(max+1))
	for i := range b {
		b[i] = letters[rng.Intn(len(letters))]
	}
	return string(b)
}
