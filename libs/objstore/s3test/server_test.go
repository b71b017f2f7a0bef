package s3test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStartServesABucket(t *testing.T) {
	srv := Start(t)
	resp, err := http.Get(srv.Endpoint + healthPath)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	u, err := url.Parse(srv.URL("some/prefix"))
	require.NoError(t, err)
	require.Equal(t, "s3", u.Scheme)
	require.Equal(t, srv.Bucket, u.Host)
	require.Equal(t, "/some/prefix", u.Path)
	q := u.Query()
	require.Equal(t, srv.Endpoint, q.Get("endpoint"))
	require.Equal(t, Region, q.Get("region"))
	require.Equal(t, srv.CredentialsFile, q.Get("credentials_file"))
	require.False(t, q.Has("ca_file"))
	require.NotContains(t, srv.URL("p"), srv.SecretKey, "no secret in the URL")
	creds, err := os.ReadFile(srv.CredentialsFile)
	require.NoError(t, err)
	require.Contains(t, string(creds), "aws_secret_access_key = "+srv.SecretKey)
	fi, err := os.Stat(srv.CredentialsFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Contains(t, srv.Log(), "127.0.0.1")
}

func TestStartTLS(t *testing.T) {
	srv := StartWith(t, Options{TLS: true})
	require.True(t, strings.HasPrefix(srv.Endpoint, "https://127.0.0.1:"), srv.Endpoint)
	resp, err := srv.httpClient(time.Second).Get(srv.Endpoint + healthPath)
	require.NoError(t, err, "the server's CA is trusted")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = http.Get(srv.Endpoint + healthPath)
	require.ErrorContains(t, err, "certificate", "the system roots do not trust the throw-away CA")
	u, err := url.Parse(srv.URL(""))
	require.NoError(t, err)
	require.Equal(t, srv.CAFile, u.Query().Get("ca_file"))
}

// recordingTB stands in for the test handed to Start, to see whether Start
// skips or fails without ending the real test.
type recordingTB struct {
	testing.TB
	outcome string
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.outcome = "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.outcome = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	// No versitygw on PATH and no go.work (hence no .tools/bin) above.
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir())
	for _, c := range []struct{ require, want string }{
		{"", "skip: s3test: versitygw not found"},
		{"0", "skip: s3test: versitygw not found"},
		{"1", "fatal: s3test: versitygw not found"},
	} {
		t.Setenv(RequireEnv, c.require)
		rec := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(rec)
		}()
		<-done
		require.Contains(t, rec.outcome, c.want, "%s=%q", RequireEnv, c.require)
	}
}
