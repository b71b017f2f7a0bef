package objstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
	"github.com/tistream/tistream/libs/objstore/s3test"
	"github.com/tistream/tistream/libs/tlsx"
)

// s3Config is a configuration for srv's bucket under prefix, with tiny
// backoffs so retry tests stay fast.
func s3Config(srv *s3test.Server, prefix string) objstore.S3Config {
	return objstore.S3Config{
		Bucket:     srv.Bucket,
		Prefix:     prefix,
		Endpoint:   srv.Endpoint,
		Region:     s3test.Region,
		PathStyle:  true,
		AccessKey:  srv.AccessKey,
		SecretKey:  srv.SecretKey,
		MaxBackoff: time.Millisecond,
	}
}

func TestS3Contract(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	objstoretest.RunContract(t, func(t *testing.T) objstore.Store {
		// One server, a fresh prefix per case: every case starts empty.
		prefix := fmt.Sprintf("contract/%03d", n.Add(1))
		s, err := objstore.NewS3(context.Background(), s3Config(srv, prefix))
		require.NoError(t, err)
		return s
	})
}

func TestS3OpenURL(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, err := objstore.Open(ctx, srv.URL("via/url"))
	require.NoError(t, err)
	require.Equal(t, "s3://"+srv.Bucket+"/via/url", s.String())
	require.NoError(t, s.Put(ctx, "k", []byte("v")))

	// The prefix is invisible to the store's users but real in the bucket.
	root, err := objstore.Open(ctx, srv.URL(""))
	require.NoError(t, err)
	require.Equal(t, "s3://"+srv.Bucket, root.String())
	got, err := root.Get(ctx, "via/url/k")
	require.NoError(t, err)
	require.Equal(t, "v", string(got))
	objs, more, err := s.List(ctx, "", "", 0)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []objstore.ObjectInfo{{Key: "k", Size: 1}}, objs)
}

func TestS3CredentialsFromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	// Keep the rest of the AWS chain out of reach, so the test proves the
	// environment variables were used.
	isolateAWSEnv(t, srv.AccessKey, srv.SecretKey)
	ctx := context.Background()
	s, err := objstore.Open(ctx, "s3://"+srv.Bucket+"/env?endpoint="+srv.Endpoint)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
}

// isolateAWSEnv keeps the AWS credential chain's other sources (shared
// files, instance metadata) out of reach and sets the environment's keys.
func isolateAWSEnv(t *testing.T, accessKey, secretKey string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// credentials_file is used, and wins over the environment.
func TestS3CredentialsFile(t *testing.T) {
	srv := s3test.Start(t)
	isolateAWSEnv(t, "WRONGKEYFROMENV", "wrong-secret-from-env")
	ctx := context.Background()
	s, err := objstore.Open(ctx, srv.URL("file-creds"))
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))

	// Without it, the environment's wrong keys are used and rejected.
	_, err = objstore.Open(ctx, "s3://"+srv.Bucket+"?endpoint="+srv.Endpoint+"&max_attempts=1")
	require.ErrorContains(t, err, `access key id "WRONGKEYFROMENV" were rejected`)
}

// OpenProfile signs with the named profile of the credentials file, not
// its [default] (which holds a wrong key here), and not the environment.
func TestS3CredentialsProfile(t *testing.T) {
	srv := s3test.Start(t)
	isolateAWSEnv(t, "WRONGKEYFROMENV", "wrong-secret-from-env")
	ctx := context.Background()
	creds := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(creds, []byte("[default]\naws_access_key_id = WRONGDEFAULT\naws_secret_access_key = x\n"+
		"[tenant-2]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600))
	u := "s3://" + srv.Bucket + "/t2?endpoint=" + srv.Endpoint + "&max_attempts=1"
	s, err := objstore.OpenProfile(ctx, u, creds, "tenant-2")
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	_, err = objstore.OpenProfile(ctx, u, creds, "default")
	require.ErrorContains(t, err, `access key id "WRONGDEFAULT" were rejected`)
}

// Whatever fails — a rejected key from a credentials file, a missing
// object, a missing bucket, an untrusted certificate — the secret is not in
// the error.
func TestS3SecretNeverInErrors(t *testing.T) {
	srv := s3test.Start(t)
	tls := s3test.StartWith(t, s3test.Options{TLS: true})
	isolateAWSEnv(t, "", "")
	ctx := context.Background()
	const secret = "never-print-this-secret-4711"
	creds := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+secret+"\n"), 0o600))
	var errs []error
	for _, u := range []string{
		"s3://" + srv.Bucket + "?endpoint=" + srv.Endpoint + "&credentials_file=" + creds,
		"s3://no-such-bucket?endpoint=" + srv.Endpoint + "&credentials_file=" + creds,
		"s3://" + tls.Bucket + "?endpoint=" + tls.Endpoint + "&credentials_file=" + creds,
	} {
		_, err := objstore.Open(ctx, u)
		errs = append(errs, err)
	}
	cfg := s3Config(srv, "")
	cfg.SecretKey = secret
	_, err := objstore.NewS3(ctx, cfg)
	errs = append(errs, err)
	// An operation's error, after a good start.
	good, err := objstore.NewS3(ctx, s3Config(srv, ""))
	require.NoError(t, err)
	_, err = good.Get(ctx, "missing")
	errs = append(errs, err)
	for i, err := range errs {
		require.Error(t, err, i)
		t.Logf("%d: %v", i, err)
		require.NotContains(t, err.Error(), secret, i)
		require.NotContains(t, err.Error(), srv.SecretKey, i)
	}
}

// ca_file makes an https endpoint signed by a private CA trusted; without
// it, or with another CA, the start fails at once saying why.
func TestS3CAFile(t *testing.T) {
	srv := s3test.StartWith(t, s3test.Options{TLS: true})
	isolateAWSEnv(t, "", "")
	ctx := context.Background()
	s, err := objstore.Open(ctx, srv.URL("tls"))
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("over https")))
	require.NoError(t, s.PutIfAbsent(ctx, "once", []byte("1")))
	require.ErrorIs(t, s.PutIfAbsent(ctx, "once", []byte("2")), objstore.ErrExists)
	got, err := s.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "over https", string(got))

	other, err := tlsx.NewCA("another CA", time.Hour)
	require.NoError(t, err)
	otherFile := filepath.Join(t.TempDir(), "other-ca.pem")
	require.NoError(t, os.WriteFile(otherFile, other.CertPEM, 0o600))
	base := "s3://" + srv.Bucket + "?endpoint=" + srv.Endpoint + "&credentials_file=" + srv.CredentialsFile
	for name, u := range map[string]string{
		"system roots": base,
		"another CA":   base + "&ca_file=" + otherFile,
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := objstore.Open(ctx, u)
			require.ErrorContains(t, err, fmt.Sprintf("s3 bucket %q at endpoint %s: the server's TLS certificate is not trusted", srv.Bucket, srv.Endpoint))
			require.ErrorContains(t, err, "x509: certificate signed by unknown authority")
			require.ErrorContains(t, err, "ca_file=PATH")
			require.NotContains(t, err.Error(), "gave up after", "a certificate error is not retried")
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

func TestS3MissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	cfg := s3Config(srv, "")
	cfg.Bucket = "no-such-bucket"
	_, err := objstore.NewS3(context.Background(), cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf(`s3 bucket "no-such-bucket" does not exist at endpoint %s`, srv.Endpoint))
}

func TestS3RejectedCredentials(t *testing.T) {
	srv := s3test.Start(t)
	for _, c := range []struct{ name, access, secret string }{
		{"wrong secret", srv.AccessKey, "not-the-secret-at-all"},
		{"unknown access key", "NOSUCHACCESSKEY", "not-the-secret-at-all"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := s3Config(srv, "")
			cfg.AccessKey, cfg.SecretKey = c.access, c.secret
			_, err := objstore.NewS3(context.Background(), cfg)
			require.Error(t, err)
			msg := err.Error()
			require.Contains(t, msg, "rejected")
			require.Contains(t, msg, fmt.Sprintf("access key id %q", c.access))
			require.Contains(t, msg, srv.Bucket)
			require.NotContains(t, msg, c.secret)
		})
	}
}

func TestS3ErrorsNameKeyAndBucket(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, err := objstore.NewS3(ctx, s3Config(srv, "named"))
	require.NoError(t, err)
	_, err = s.Get(ctx, "some/missing/key")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.True(t, strings.Contains(err.Error(), "some/missing/key") && strings.Contains(err.Error(), srv.Bucket), err.Error())
}

// A ranged read into a buffer that holds the range reads the body into it:
// the pool's readers recycle their read buffers, and on S3 that is only
// worth anything if a read does not make a new buffer of the range's size
// (and copy it into the caller's).
func TestS3GetRangeIntoAllocatesNoBody(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, err := objstore.NewS3(ctx, s3Config(srv, "into"))
	require.NoError(t, err)
	const size = 4 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	require.NoError(t, s.Put(ctx, "obj", data))
	buf := make([]byte, size)                             // exactly the range: no room to spare
	_, err = objstore.GetRangeInto(ctx, s, "obj", 0, buf) // warm the client
	require.NoError(t, err)
	clear(buf)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := objstore.GetRangeInto(ctx, s, "obj", 0, buf)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Equal(t, &buf[0], &got[0])
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(size/4), "a read into a buffer that holds it allocated %d bytes for a %d-byte body", allocated, size)
}
