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
		{"s3://b?access_key=AK", "credentials are not accepted in the URL"},
		{"s3://b?credentials_file=", "credentials_file needs a path"},
		{"s3://b?ca_file=", "ca_file needs a path"},
		{"s3://b?endpoint=http://h&ca_file=/ca.pem", "only meaningful with an https:// endpoint"},
		{"s3://b?credentials_file=/nonexistent/tistream-credentials", "s3 credentials file: open /nonexistent/tistream-credentials: no such file"},
		{"s3://b?endpoint=https://h&ca_file=/nonexistent/ca.pem", "s3 CA file: open /nonexistent/ca.pem: no such file"},
		{"s3://user:pw@b", "credentials are not accepted in the URL"},
		{"%zz", "malformed URL"},
	} {
		_, err := Open(context.Background(), c.url)
		require.ErrorContains(t, err, c.msg, c.url)
	}
}

// A secret in a URL is refused, saying why and what to do instead, and
// no error of Open, of the URL parser or of a credentials file ever quotes
// a secret.
func TestOpenRefusesSecretsInURL(t *testing.T) {
	const secret = "TOP-SECRET-VALUE"
	const access = "AKIDSECRETACCESSKEYID"
	for _, raw := range []string{
		"s3://b?secret_key=" + secret,
		"s3://b?access_key=" + access + "&secret_key=" + secret,
		"s3://b?access_key=" + access,
		"s3://b/p?endpoint=http://127.0.0.1:9000&access_key=" + access + "&secret_key=" + secret + "&region=r",
		"s3://b?secret_key=" + secret + "&secret_key=" + secret, // given twice
		"s3://b?secret_key=" + secret + "&bogus=1",              // unknown parameter
		"s3://b?secret_key=" + secret + "&endpoint=ftp://x",     // bad endpoint
		"s3://" + access + ":" + secret + "@b",
	} {
		_, err := Open(context.Background(), raw)
		require.ErrorIs(t, err, errSecretInURL, raw)
		for _, want := range []string{"not accepted in the URL", "process lists, shell history and logs", "credentials_file=PATH", "AWS_ACCESS_KEY_ID"} {
			require.ErrorContains(t, err, want, raw)
		}
		require.NotContains(t, err.Error(), secret, raw)
		require.NotContains(t, err.Error(), access, raw)
	}
}

func TestErrorsNeverQuoteSecrets(t *testing.T) {
	const secret = "TOP-SECRET-VALUE"
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	urls := []string{
		"s3://b?x=%zz&secret_key=" + secret, // malformed query
		"s3://b:" + secret + "@host",
		"s3://b:9000?secret_key=" + secret,
		"s3://b?credentials_file=" + file("broken", "[default\naws_secret_access_key = "+secret+"\n"),
		"s3://b?credentials_file=" + file("half", "[default]\naws_secret_access_key = "+secret+"\n"),
		"s3://b?credentials_file=" + file("other-profile", "[prod]\naws_access_key_id = AK\naws_secret_access_key = "+secret+"\n"),
		"s3://b?credentials_file=" + file("garbage", secret+"\n"),
		"s3://b?endpoint=https://h&ca_file=" + file("ca-garbage", secret),
	}
	for _, raw := range urls {
		_, err := Open(context.Background(), raw)
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), secret, raw)
	}
	// The struct's own checks do not quote it either.
	for _, cfg := range []S3Config{
		{Bucket: "b", SecretKey: secret},
		{Bucket: "b", AccessKey: "AK", SecretKey: secret, CredentialsFile: "/x"},
		{Bucket: "b", AccessKey: "AK", SecretKey: secret, Endpoint: "ftp://" + "h"},
	} {
		err := cfg.Validate()
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret)
	}
}

// A credentials file is read again when the cache asks, so a rotated
// secret takes effect; while it cannot be read, the last good credentials
// stay in use for a short while.
func TestCredentialsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	write := func(id, secret string) {
		content := "# TiStream's store\n[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n"
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	write("AK1", "S1")
	p := &fileCredentials{path: path}
	ctx := context.Background()
	c, err := p.Retrieve(ctx)
	require.NoError(t, err)
	require.Equal(t, "AK1", c.AccessKeyID)
	require.Equal(t, "S1", c.SecretAccessKey)
	require.True(t, c.CanExpire)
	require.WithinDuration(t, time.Now().Add(credentialsFileRefresh), c.Expires, time.Minute)

	write("AK2", "S2")
	c, err = p.Retrieve(ctx)
	require.NoError(t, err)
	require.Equal(t, "AK2", c.AccessKeyID)

	require.NoError(t, os.Remove(path))
	c, err = p.Retrieve(ctx)
	require.NoError(t, err)
	require.Equal(t, "AK2", c.AccessKeyID)
	require.WithinDuration(t, time.Now().Add(30*time.Second), c.Expires, 5*time.Second)

	_, err = (&fileCredentials{path: path}).Retrieve(ctx)
	require.ErrorContains(t, err, "no such file")
}

// A named profile of a credentials file is read, not [default], again at
// every refresh; a missing profile is an error naming it, never a key.
func TestCredentialsFileProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	write := func(secret string) {
		content := "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n" +
			"[tenant-7]\naws_access_key_id = AK7\naws_secret_access_key = " + secret + "\n"
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	}
	write("S7")
	ctx := context.Background()
	p := &fileCredentials{path: path, profile: "tenant-7"}
	c, err := p.Retrieve(ctx)
	require.NoError(t, err)
	require.Equal(t, "AK7", c.AccessKeyID)
	require.Equal(t, "S7", c.SecretAccessKey)
	write("S7b")
	c, err = p.Retrieve(ctx)
	require.NoError(t, err)
	require.Equal(t, "S7b", c.SecretAccessKey)

	_, err = (&fileCredentials{path: path, profile: "tenant-8"}).Retrieve(ctx)
	require.ErrorContains(t, err, "has no [tenant-8] profile")
	require.NotContains(t, err.Error(), "S7b")
}

// OpenProfile: a profile needs a credentials file, and an s3:// URL with
// its own credentials_file cannot take a profile too; non-s3 stores ignore
// it.
func TestOpenProfileErrors(t *testing.T) {
	ctx := context.Background()
	_, err := OpenProfile(ctx, "s3://b?endpoint=http://127.0.0.1:1", "", "p")
	require.ErrorContains(t, err, `profile "p": no credentials file`)
	_, err = OpenProfile(ctx, "s3://b?endpoint=http://127.0.0.1:1&credentials_file=/x", "/y", "p")
	require.ErrorContains(t, err, "give one of them")
	s, err := OpenProfile(ctx, "file://"+t.TempDir(), "", "p")
	require.NoError(t, err)
	require.NotNil(t, s)
	require.ErrorContains(t, S3Config{Bucket: "b", CredentialsProfile: "p"}.Validate(), "needs a credentials file")
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
			"s3://bucket?credentials_file=/etc/tistream/s3&max_attempts=3&max_backoff=250ms",
			S3Config{Bucket: "bucket", CredentialsFile: "/etc/tistream/s3", MaxAttempts: 3, MaxBackoff: 250 * time.Millisecond},
		},
		{
			"s3://bucket?endpoint=https://s3.internal:9000&ca_file=/etc/tistream/ca.pem",
			S3Config{Bucket: "bucket", Endpoint: "https://s3.internal:9000", PathStyle: true, CAFile: "/etc/tistream/ca.pem"},
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
		{func(c *S3Config) { c.AccessKey, c.SecretKey, c.CredentialsFile = "a", "s", "/f" }, "not both"},
		{func(c *S3Config) { c.Endpoint, c.CAFile = "http://h", "/ca.pem" }, "only meaningful with an https:// endpoint"},
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
