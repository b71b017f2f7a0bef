package objstore

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpenFileAndMem(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+filepath.ToSlash(dir)+"/abs")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "abs"), s.(*LocalFS).Root())

	// Relative paths resolve against the working directory at Open time.
	t.Chdir(dir)
	for url, want := range map[string]string{
		"file://./rel/store": filepath.Join(dir, "rel", "store"),
		"file://.":           dir,
		"file://../up":       filepath.Join(filepath.Dir(dir), "up"),
	} {
		s, err := Open(ctx, url)
		require.NoError(t, err, url)
		require.Equal(t, want, s.(*LocalFS).Root(), url)
		fi, err := os.Stat(filepath.Join(want, tmpDirName))
		require.NoError(t, err, "root and temp dir are created")
		require.True(t, fi.IsDir())
	}

	s, err = Open(ctx, "mem://")
	require.NoError(t, err)
	require.IsType(t, &Memory{}, s)
}

func TestOpenRejects(t *testing.T) {
	for _, c := range []struct{ url, msg string }{
		{"ftp://x/y", `unsupported scheme "ftp"`},
		{"/just/a/path", `unsupported scheme ""`},
		{"file://otherhost/x", `names host "otherhost"`},
		{"file:relative", "file:///abs/path"},
		{"file://", "no path"},
		{"file:///x?sync=1", "no parameters"},
		{"mem://name", "mem:// takes no name"},
		{"s3:///prefix-without-bucket", "bucket is required"},
		{"s3://b?colour=blue", `unknown parameter "colour"`},
		{"s3://b?region=a&region=b", `"region" is given 2 times`},
		{"s3://b?path_style=maybe", "path_style"},
		{"s3://b?max_attempts=lots", "max_attempts"},
		{"s3://b?max_attempts=1000", "outside 0..100"},
		{"s3://b?max_backoff=soon", "max_backoff"},
		{"s3://b:9000/x", "takes no port"},
		{"s3://b/a/../c", `".." path segment`},
		{"s3://b?endpoint=127.0.0.1:9000", "not an http:// or https:// URL"},
		{"s3://b?access_key=AK", "must be given together"},
		{"s3://user:pw@b", "user info"},
		{"%zz", "malformed URL"},
	} {
		_, err := Open(context.Background(), c.url)
		require.ErrorContains(t, err, c.msg, c.url)
	}
}

func TestOpenErrorsHideSecret(t *testing.T) {
	const secret = "TOP-SECRET-VALUE"
	for _, raw := range []string{
		"s3://b?secret_key=" + secret,                       // no access key
		"s3://b?secret_key=" + secret + "&bogus=1",          // unknown parameter
		"s3://b?secret_key=" + secret + "&endpoint=ftp://x", // bad endpoint
		"s3://b?secret_key=" + secret + "&x=%zz",            // malformed query
		"s3://b:" + secret + "@host",
	} {
		_, err := Open(context.Background(), raw)
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret, raw)
	}
}

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want S3Config
	}{
		{"s3://bucket", S3Config{Bucket: "bucket"}},
		{"s3://bucket/", S3Config{Bucket: "bucket"}},
		{"s3://bucket/a/b/", S3Config{Bucket: "bucket", Prefix: "a/b"}},
		{
			"s3://bucket/p?endpoint=http://127.0.0.1:9000&region=eu-west-1",
			S3Config{Bucket: "bucket", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", PathStyle: true},
		},
		{
			"s3://bucket?endpoint=https://s3.example.com&path_style=false",
			S3Config{Bucket: "bucket", Endpoint: "https://s3.example.com"},
		},
		{"s3://bucket?path_style=true", S3Config{Bucket: "bucket", PathStyle: true}},
		{
			"s3://bucket?access_key=AK&secret_key=S%2FK&max_attempts=3&max_backoff=250ms",
			S3Config{Bucket: "bucket", AccessKey: "AK", SecretKey: "S/K", MaxAttempts: 3, MaxBackoff: 250 * time.Millisecond},
		},
	} {
		u, err := url.Parse(c.url)
		require.NoError(t, err)
		got, err := parseS3URL(u)
		require.NoError(t, err, c.url)
		require.Equal(t, c.want, got, c.url)
	}
}

func TestS3ConfigValidate(t *testing.T) {
	ok := S3Config{Bucket: "b"}
	require.NoError(t, ok.Validate())
	for _, c := range []struct {
		mod func(*S3Config)
		msg string
	}{
		{func(c *S3Config) { c.Bucket = "" }, "bucket is required"},
		{func(c *S3Config) { c.Bucket = "a/b" }, "not a valid bucket name"},
		{func(c *S3Config) { c.Bucket = "a b" }, "not a valid bucket name"},
		{func(c *S3Config) { c.Prefix = "a//b" }, "prefix"},
		{func(c *S3Config) { c.Prefix = ".tmp" }, "reserved"},
		{func(c *S3Config) { c.Endpoint = "localhost:9000" }, "not an http:// or https:// URL"},
		{func(c *S3Config) { c.Endpoint = "http://" }, "with a host"},
		{func(c *S3Config) { c.Endpoint = "http://h?x=1" }, "must not have"},
		{func(c *S3Config) { c.SecretKey = "s" }, "must be given together"},
		{func(c *S3Config) { c.AccessKey = "a" }, "must be given together"},
		{func(c *S3Config) { c.MaxAttempts = -1 }, "max attempts -1"},
		{func(c *S3Config) { c.MaxBackoff = -time.Second }, "max backoff -1s is negative"},
	} {
		cfg := ok
		c.mod(&cfg)
		require.ErrorContains(t, cfg.Validate(), c.msg)
	}
	// A prefix is taken with or without its slashes.
	require.NoError(t, S3Config{Bucket: "b", Prefix: "/a/b/"}.Validate())
}
