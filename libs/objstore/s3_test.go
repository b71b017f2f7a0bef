package objstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
	"github.com/tistream/tistream/libs/objstore/s3test"
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
	// Keep the rest of the AWS chain (shared files, instance metadata) out of
	// reach, so the test proves the environment variables were used.
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	s, err := objstore.Open(ctx, "s3://"+srv.Bucket+"/env?endpoint="+srv.Endpoint)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
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
