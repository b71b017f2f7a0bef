package workload

import (
	"context"
	"fmt"
	osexec "os/exec"
	"regexp"
	"strings"
	"time"
)

// SysbenchTables and SysbenchRows size sysbench's tables (sbtest.sbtest1..N).
const (
	SysbenchTables = 4
	SysbenchRows   = 2000
)

// Sysbench runs TiDB's usual benchmark against the server: prepare, then
// oltp_read_write, oltp_insert and oltp_delete, each for a third of
// env.Duration with 4 threads. The sysbench binary is the Debian package
// (scripts/install-sysbench.sh).
func Sysbench(ctx context.Context, env Env, rep *Report) error {
	if err := exec(ctx, env.DB, "CREATE DATABASE IF NOT EXISTS sbtest"); err != nil {
		return err
	}
	if _, err := SysbenchRun(ctx, env.MySQL, "oltp_read_write", "prepare", 0, 4); err != nil {
		return err
	}
	var lines []string
	for _, test := range []string{"oltp_read_write", "oltp_insert", "oltp_delete"} {
		r, err := SysbenchRun(ctx, env.MySQL, test, "run", env.Duration/3, 4)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %.0f tps", test, r.TPS))
	}
	rep.add("sysbench: %d tables of %d rows; %s", SysbenchTables, SysbenchRows, strings.Join(lines, ", "))
	return nil
}

// SysbenchResult is what a sysbench run reports.
type SysbenchResult struct {
	TPS, QPS float64
	Errors   float64 // ignored errors per second (retried)
}

var (
	tpsRe = regexp.MustCompile(`transactions:\s+\d+\s+\(([\d.]+) per sec`)
	qpsRe = regexp.MustCompile(`queries:\s+\d+\s+\(([\d.]+) per sec`)
	errRe = regexp.MustCompile(`ignored errors:\s+\d+\s+\(([\d.]+) per sec`)
)

// SysbenchRun runs one sysbench command (prepare or run) against the
// MySQL address host:port.
func SysbenchRun(ctx context.Context, mysqlAddr, test, cmd string, d time.Duration, threads int) (SysbenchResult, error) {
	host, port, _ := strings.Cut(mysqlAddr, ":")
	args := []string{test, "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port, "--mysql-user=root",
		"--mysql-db=sbtest", fmt.Sprintf("--tables=%d", SysbenchTables), fmt.Sprintf("--table-size=%d", SysbenchRows),
		fmt.Sprintf("--threads=%d", threads), "--mysql-ignore-errors=1062,1213,1205,8002,8022,8027,8028,9007", "--rand-seed=1"}
	if cmd == "run" {
		args = append(args, fmt.Sprintf("--time=%d", max(1, int(d.Seconds()))), "--report-interval=0")
	}
	out, err := execCommand(ctx, "sysbench", append(args, cmd)...).CombinedOutput()
	if err != nil {
		return SysbenchResult{}, fmt.Errorf("sysbench %s %s: %w\n%s", test, cmd, err, out)
	}
	var r SysbenchResult
	for re, v := range map[*regexp.Regexp]*float64{tpsRe: &r.TPS, qpsRe: &r.QPS, errRe: &r.Errors} {
		if m := re.FindSubmatch(out); m != nil {
			fmt.Sscan(string(m[1]), v)
		}
	}
	return r, nil
}

var execCommand = osexec.CommandContext
