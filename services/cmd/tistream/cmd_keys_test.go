package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/crypt"
)

func runKeysCmd(args ...string) (code int, stdout, stderr string) {
	var o, e strings.Builder
	code = run(append([]string{"keys"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// TestKeysCommand drives a key through its life with the command and checks
// each step with the KMS the services use (crypt.LocalKMS), not with the
// command's own output.
func TestKeysCommand(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "keys")

	code, out, errOut := runKeysCmd("create", "--key-dir", dir, "--name", "t7")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "created local:t7")
	fi, err := os.Stat(filepath.Join(dir, "t7.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	kms, err := crypt.NewLocalKMS(dir)
	require.NoError(t, err)
	dek := make([]byte, crypt.DataKeyLen)
	dek[0] = 7
	w1, err := kms.WrapKey(ctx, "local:t7", dek)
	require.NoError(t, err)

	code, _, errOut = runKeysCmd("create", "--key-dir", dir, "--name", "t7")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "exists", "a key is never replaced")

	code, out, errOut = runKeysCmd("rotate", "--key-dir", dir, "--name", "t7")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "version 2")
	w2, err := kms.WrapKey(ctx, "local:t7", dek)
	require.NoError(t, err)
	require.NotEqual(t, w1[1:5], w2[1:5], "new wraps use the new version")
	for _, w := range [][]byte{w1, w2} {
		got, err := kms.UnwrapKey(ctx, "local:t7", w)
		require.NoError(t, err, "both versions stay readable")
		require.Equal(t, dek, got)
	}

	code, out, errOut = runKeysCmd("disable", "--key-dir", dir, "--name", "t7")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "disabled local:t7")
	_, err = kms.UnwrapKey(ctx, "local:t7", w1)
	require.ErrorIs(t, err, crypt.ErrKeyDisabled)

	code, out, _ = runKeysCmd("list", "--key-dir", dir)
	require.Equal(t, 0, code)
	require.Regexp(t, `local:t7\s+disabled\s+2\s+2`, out)

	code, _, errOut = runKeysCmd("enable", "--key-dir", dir, "--name", "t7")
	require.Equal(t, 0, code, errOut)
	got, err := kms.UnwrapKey(ctx, "local:t7", w1)
	require.NoError(t, err)
	require.Equal(t, dek, got)

	// A second key, and one whose mode lets others read it.
	code, _, errOut = runKeysCmd("create", "--key-dir", dir, "--name", "t8")
	require.Equal(t, 0, code, errOut)
	code, out, _ = runKeysCmd("list", "--key-dir", dir, "--name", "t8")
	require.Equal(t, 0, code)
	require.Regexp(t, `local:t8\s+enabled\s+1\s+1`, out)
	require.NotContains(t, out, "local:t7")
	require.NoError(t, os.Chmod(filepath.Join(dir, "t8.key"), 0o644))
	code, out, _ = runKeysCmd("list", "--key-dir", dir)
	require.Equal(t, 1, code, "an unreadable key file fails the listing")
	require.Regexp(t, `local:t7\s+enabled\s+2\s+2`, out)
	require.Contains(t, out, "chmod 600")
	keyBytes, err := os.ReadFile(filepath.Join(dir, "t7.key"))
	require.NoError(t, err)
	require.NotContains(t, out, strings.Split(strings.Split(string(keyBytes), `"key": "`)[1], `"`)[0], "list never prints a key")
}

func TestKeysCommandBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"create", "--name", "a"}, 2, "--key-dir is required"},
		{[]string{"rotate", "--key-dir", dir}, 2, "--name is required"},
		{[]string{"create", "--key-dir", dir, "--name", "../x"}, 1, "local key name"},
		{[]string{"rotate", "--key-dir", dir, "--name", "missing"}, 1, "missing.key"},
		{[]string{"disable", "--key-dir", dir, "--name", "missing"}, 1, "missing.key"},
		{[]string{"list", "--key-dir", filepath.Join(dir, "nope")}, 1, "local key directory"},
		{[]string{"list", "--key-dir", dir, "--name", "missing"}, 1, "no key file missing.key"},
		{[]string{"shred", "--key-dir", dir, "--name", "a"}, 2, "unknown subcommand"},
		{[]string{"create", "--key-dir", dir, "--name", "a", "extra"}, 2, "unexpected arguments"},
	} {
		code, _, errOut := runKeysCmd(c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.msg, "%v", c.args)
	}
	// A corrupt key file is an error, not a panic.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.key"), []byte("{not json"), 0o600))
	code, _, errOut := runKeysCmd("rotate", "--key-dir", dir, "--name", "bad")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "bad.key")
}
