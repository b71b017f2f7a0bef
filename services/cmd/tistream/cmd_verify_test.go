package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tistream/tistream/libs/truth"
)

// verifyFixture writes a small truth file and the clean pull of it: two
// tables, three transactions, resolved events between them.
func verifyFixture(t *testing.T) (dir string, rows []truth.Row) {
	t.Helper()
	dir = t.TempDir()
	rows = []truth.Row{
		{Tenant: 1, TableID: 101, CommitTs: 1 << 60, StartTs: 1<<60 - 9, Op: truth.OpPut, Key: []byte("t101_r1"), Value: []byte("a")},
		{Tenant: 1, TableID: 101, CommitTs: 1 << 60, StartTs: 1<<60 - 9, Op: truth.OpPut, Key: []byte("t101_r2"), Value: []byte("b")},
		{Tenant: 1, TableID: 102, CommitTs: 1<<60 + 5, StartTs: 1<<60 + 1, Op: truth.OpDelete, Key: []byte("t102_r1")},
		{Tenant: 1, TableID: 101, CommitTs: 1<<60 + 8, StartTs: 1<<60 + 2, Op: truth.OpPut, Key: []byte("t101_r1"), Value: []byte("c")},
	}
	var tb bytes.Buffer
	w := truth.NewWriter(&tb)
	for i := len(rows) - 1; i >= 0; i-- { // the truth is in no particular order
		require.NoError(t, w.WriteRow(rows[i]))
	}
	require.NoError(t, w.WriteEnd(truth.End{ResolvedTs: 1<<60 + 10}))
	require.NoError(t, w.Flush())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "truth.jsonl"), tb.Bytes(), 0o644))

	writePulled(t, dir, "clean.jsonl", rows, []uint64{0, 1<<60 + 1, 0, 1<<60 + 10})
	writePulled(t, dir, "short.jsonl", rows[:3], []uint64{0, 1<<60 + 1, 1<<60 + 6})
	writePulled(t, dir, "t101.jsonl", []truth.Row{rows[0], rows[1], rows[3]}, []uint64{0, 1<<60 + 1, 1<<60 + 10})
	dup := append(append([]truth.Row{}, rows[:2]...), rows[1], rows[2], rows[3])
	writePulled(t, dir, "dup.jsonl", dup, []uint64{0, 0, 0, 0, 1<<60 + 10})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.jsonl"),
		[]byte(`{"type":"resolved","ts":1}`+"\n"+`{"type":"resolved","ts":"x"}`+"\n"), 0o644))
	return dir, rows
}

// writePulled writes rows, each followed by resolved[i] when it is not 0.
func writePulled(t *testing.T, dir, name string, rows []truth.Row, resolved []uint64) {
	var b bytes.Buffer
	w := truth.NewWriter(&b)
	for i, r := range rows {
		require.NoError(t, w.WriteRow(r))
		if resolved[i] != 0 {
			require.NoError(t, w.WriteResolved(truth.Resolved{Ts: resolved[i]}))
		}
	}
	require.NoError(t, w.Flush())
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644))
}

func TestVerifyCommand(t *testing.T) {
	dir, _ := verifyFixture(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	truthFlag := "--truth=" + p("truth.jsonl")
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout []string // substrings
		stderr []string
	}{
		{name: "clean", args: []string{truthFlag, "--pulled", p("clean.jsonl")}, code: 0,
			stdout: []string{"verify: OK", "matched: 4 of 4 owed rows"}},
		{name: "clean from stdin", args: []string{truthFlag, "--pulled", "-"}, stdin: "clean.jsonl", code: 0,
			stdout: []string{"verify: OK", "rows in stdin"}},
		{name: "duplicate", args: []string{truthFlag, "--pulled", p("dup.jsonl")}, code: 1,
			stdout: []string{"verify: FAIL: 1 violation (1 kind)", "duplicate: 1", "pulled line 3: tenant 1 table 101 key " +
				"743130315f7232", "already pulled at line 2"}},
		{name: "stopped early", args: []string{truthFlag, "--pulled", p("short.jsonl")}, code: 1,
			stdout: []string{"incomplete: 1", "resolved 1152921504606846982 < truth end 1152921504606846986"}},
		{name: "stopped early, partial", args: []string{truthFlag, "--pulled", p("short.jsonl"), "--partial"}, code: 0,
			stdout: []string{"verify: OK", "partial: the stream stops at resolved 1152921504606846982"}},
		{name: "one table", args: []string{truthFlag, "--pulled", p("t101.jsonl"), "--table", "101", "--tenant", "1"}, code: 0,
			stdout: []string{"verify: OK", "scope:   tenant 1, tables 101"}},
		{name: "one table, unfiltered", args: []string{truthFlag, "--pulled", p("t101.jsonl")}, code: 1,
			stdout: []string{"missing: 1", "table 102 key 743130325f7231"}},
		{name: "wrong tenant", args: []string{truthFlag, "--pulled", p("clean.jsonl"), "--tenant", "2"}, code: 1,
			stdout: []string{"out of scope: 4\n", "tenant 1, but the pull is for tenant 2"}},
		{name: "from", args: []string{truthFlag, "--pulled", p("clean.jsonl"), "--from", "1152921504606846977"}, code: 1,
			stdout: []string{"out of scope: 2", "commit_ts below the pull's start ts 1152921504606846977"}},
		{name: "examples", args: []string{truthFlag, "--pulled", p("clean.jsonl"), "--tenant=2", "--examples=2"}, code: 1,
			stdout: []string{"out of scope: 4 (first 2 shown)"}},

		{name: "no truth", args: []string{"--pulled", p("clean.jsonl")}, code: 2, stderr: []string{"--truth is required"}},
		{name: "no pulled", args: []string{truthFlag}, code: 2, stderr: []string{"--pulled is required"}},
		{name: "truth from stdin", args: []string{"--truth", "-", "--pulled", "-"}, code: 2, stderr: []string{"--truth cannot be stdin"}},
		{name: "bad tenant", args: []string{truthFlag, "--pulled", "-", "--tenant", "x"}, code: 2,
			stderr: []string{`invalid value "x" for flag -tenant`}},
		{name: "bad table", args: []string{truthFlag, "--pulled", "-", "--table", "101,x"}, code: 2,
			stderr: []string{`invalid value "101,x" for flag -table: "x" is not a table id`}},
		{name: "bad from", args: []string{truthFlag, "--pulled", "-", "--from", "-1"}, code: 2,
			stderr: []string{`invalid value "-1" for flag -from`}},
		{name: "bad examples", args: []string{truthFlag, "--pulled", "-", "--examples", "0"}, code: 2,
			stderr: []string{"--examples must be at least 1"}},
		{name: "unknown flag", args: []string{truthFlag, "--pulled", "-", "--bogus"}, code: 2,
			stderr: []string{"flag provided but not defined: -bogus"}},
		{name: "extra argument", args: []string{truthFlag, "--pulled", "-", "extra"}, code: 2,
			stderr: []string{`unexpected argument "extra"`}},
		{name: "missing truth file", args: []string{"--truth", p("nope.jsonl"), "--pulled", "-"}, code: 2,
			stderr: []string{"verify: --truth: open " + p("nope.jsonl")}},
		{name: "missing pulled file", args: []string{truthFlag, "--pulled", p("nope.jsonl")}, code: 2,
			stderr: []string{"verify: --pulled: open " + p("nope.jsonl")}},
		{name: "malformed pulled line", args: []string{truthFlag, "--pulled", p("bad.jsonl")}, code: 2,
			stderr: []string{"verify: " + p("bad.jsonl") + `:2: bad "ts": not a number`}},
		{name: "help", args: []string{"-h"}, code: 0, stderr: []string{"usage: tistream verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyStdin = strings.NewReader("")
			if tc.stdin != "" {
				f, err := os.Open(p(tc.stdin))
				require.NoError(t, err)
				defer f.Close()
				verifyStdin = f
			}
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"verify"}, tc.args...), &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			for _, s := range tc.stdout {
				require.Contains(t, stdout.String(), s)
			}
			for _, s := range tc.stderr {
				require.Contains(t, stderr.String(), s)
			}
			if tc.code == 2 {
				require.Empty(t, stdout.String(), "errors go to stderr")
			} else if tc.stderr == nil {
				require.Empty(t, stderr.String())
			}
		})
	}
}
