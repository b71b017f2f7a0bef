package s3test

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"testing"

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
	require.Equal(t, srv.AccessKey, q.Get("access_key"))
	require.Equal(t, srv.SecretKey, q.Get("secret_key"))
	require.Equal(t, Region, q.Get("region"))
	require.Contains(t, srv.Log(), "127.0.0.1")
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
