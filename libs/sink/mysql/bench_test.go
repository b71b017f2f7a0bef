package mysqlsink

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tistream/tistream/libs/sink/mysql/mysqltest"
	tc "github.com/tistream/tistream/libs/tidbcodec"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// BenchmarkSinkApply is the sink's throughput into MariaDB alone (the
// upstream is a fake api-server with everything ready): 4 sysbench-like
// tables, transactions of 10 row changes (70% inserts, 20% updates, 10%
// deletes) in one table, a resolved ts every 100 transactions. Reported
// as rows/s and txns/s.
func BenchmarkSinkApply(b *testing.B) {
	srv := mysqltest.Start(b)
	const txns, perTxn = 5000, 10
	for i := 0; b.Loop(); i++ {
		p := fmt.Sprintf("bench%d_", i)
		u := benchUpstream(b, p, txns, perTxn)
		addr, _ := serveFake(b, u)
		start := time.Now()
		if err := runSink(b, addr, srv.DSN, p, lastResolved(u), 0, func(c *Config) { *c = benchConfig(*c) }); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start).Seconds()
		b.ReportMetric(float64(txns*perTxn)/d, "rows/s")
		b.ReportMetric(float64(txns)/d, "txns/s")
	}
}

// benchConfig is the sink's default batching and syncpoints.
func benchConfig(c Config) Config {
	d := DefaultConfig()
	c.MaxBatchRows, c.SyncpointInterval = d.MaxBatchRows, d.SyncpointInterval
	return c
}

func benchUpstream(b *testing.B, p string, txns, perTxn int) *upstream {
	u := newUpstream(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var infos []*tc.TableInfo
	for i := range 4 {
		info := build(b, tc.NewTableBuilder(int64(300+i), fmt.Sprintf("sbtest%d", i)).IntPrimaryKey("id", tc.IntType(tc.TypeLonglong, false)).
			Column("k", tc.IntType(tc.TypeLong, false)).Column("c", tc.VarcharType(120)).Column("pad", tc.VarcharType(60)).
			Index("k_1", false, "k"))
		u.table(p+"db", info)
		infos = append(infos, info)
	}
	c, pad := strings.Repeat("c", 120), strings.Repeat("p", 60)
	handles := make([][]int64, len(infos))
	for t := range txns {
		ti := rng.IntN(len(infos))
		info := infos[ti]
		ts := u.next()
		used := map[int64]bool{} // a transaction writes a key once
		for range perTxn {
			ev := &apiv1.RowChange{TableId: info.ID, CommitTs: ts, StartTs: ts - 1, SchemaVersion: u.version}
			r := rng.IntN(10)
			switch {
			case r < 1 && len(handles[ti]) > 0 && !used[handles[ti][0]]:
				k := 0
				used[handles[ti][k]] = true
				ev.Op, ev.Key = apiv1.Op_OP_DELETE, tc.EncodeRecordKey(info.ID, handles[ti][k])
				handles[ti] = append(handles[ti][:k], handles[ti][k+1:]...)
			default:
				h := int64(len(handles[ti])*7 + t)
				if k := rng.IntN(len(handles[ti]) + 1); r < 3 && k < len(handles[ti]) && !used[handles[ti][k]] {
					h = handles[ti][k]
				} else {
					handles[ti] = append(handles[ti], h)
				}
				v, err := tc.EncodeRow(nil, []tc.ColumnValue{{ID: 2, Value: tc.IntValue(rng.Int64N(1 << 30))},
					{ID: 3, Value: tc.StringValue(c)}, {ID: 4, Value: tc.StringValue(pad)}})
				if err != nil {
					b.Fatal(err)
				}
				used[h] = true
				ev.Op, ev.Key, ev.Value = apiv1.Op_OP_PUT, tc.EncodeRecordKey(info.ID, h), v
			}
			u.events = append(u.events, &apiv1.PullEvent{Event: &apiv1.PullEvent_Row{Row: ev}})
		}
		if t%100 == 99 {
			u.resolved()
		}
	}
	u.resolved()
	return u
}
