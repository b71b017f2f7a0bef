// Package mysqltest starts a throw-away MariaDB server for tests: the
// Debian mariadb-server package (scripts/install-mariadb.sh installs it),
// a fresh data directory under the test's temp dir, 127.0.0.1 on a free
// port, stopped when the test ends. Without MariaDB a test is skipped, or
// fails when TISTREAM_REQUIRE_MARIADB=1 (make test sets it).
package mysqltest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver the sink uses
)

// Server is a running MariaDB.
type Server struct {
	Addr string // 127.0.0.1:port
	DSN  string // root DSN without a database: root@tcp(addr)/
	cmd  *exec.Cmd
	log  string
}

// binary finds mariadbd (or mysqld) on the PATH or in /usr/sbin, which
// is not on every PATH.
func binary(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		if p := filepath.Join("/usr/sbin", n); isExec(p) {
			return p
		}
		if p := filepath.Join("/usr/bin", n); isExec(p) {
			return p
		}
	}
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Start starts a MariaDB for the test, or skips (fails with
// TISTREAM_REQUIRE_MARIADB=1) when none is installed.
func Start(t testing.TB) *Server {
	t.Helper()
	server := binary("mariadbd", "mysqld")
	install := binary("mariadb-install-db", "mysql_install_db")
	if server == "" || install == "" {
		msg := "MariaDB is not installed (run scripts/install-mariadb.sh, or apt-get install mariadb-server)"
		if os.Getenv("TISTREAM_REQUIRE_MARIADB") == "1" {
			t.Fatal(msg + "; TISTREAM_REQUIRE_MARIADB=1 requires it")
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	user := []string{}
	if os.Geteuid() == 0 {
		user = []string{"--user=root"} // mariadbd refuses to run as root otherwise
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db"}, user...)
	out, err := exec.Command(install, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", install, err, out)
	}
	port := freePort(t)
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(dir, "mariadb.log")}
	s.DSN = "root@tcp(" + s.Addr + ")/"
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--innodb-buffer-pool-size=128M",
		"--innodb-flush-log-at-trx-commit=2", "--log-error=" + s.log}, user...)
	s.cmd = exec.Command(server, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", server, err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	if err := s.wait(60*time.Second, exited); err != nil {
		b, _ := os.ReadFile(s.log)
		t.Fatalf("MariaDB did not come up: %v\n%s", err, tail(b, 4096))
	}
	return s
}

// wait polls until the server answers a query, it exits, or the timeout.
func (s *Server) wait(timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		db, err := sql.Open("mysql", s.DSN)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			db.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("mariadbd exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Open opens a connection pool to the server (database db, or none).
func (s *Server) Open(t testing.TB, db string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("mysql", s.DSN+db+"?parseTime=false&multiStatements=false")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
