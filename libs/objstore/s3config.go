package objstore

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Retry defaults of the S3 store: enough attempts to ride out a few seconds
// of throttling or a server restart, short enough that an endpoint that keeps
// failing is reported after at most ~16 s of backoff (~8 s on average).
const (
	DefaultS3MaxAttempts = 8
	DefaultS3MaxBackoff  = 5 * time.Second
	// maxS3Attempts keeps a configured attempt limit sane.
	maxS3Attempts = 100
)

// S3Config configures an S3 store; Open builds one from an s3:// URL.
type S3Config struct {
	// Bucket is required.
	Bucket string
	// Prefix, if set, is prepended (with a "/") to every key, so several
	// stores can share a bucket. Leading and trailing slashes are ignored.
	Prefix string
	// Endpoint is the base URL of an S3-compatible server, e.g.
	// "http://127.0.0.1:9000". Empty means AWS itself.
	Endpoint string
	// Region signs requests; empty means the AWS configuration chain's
	// region (AWS_REGION, ~/.aws/config), else us-east-1.
	Region string
	// PathStyle addresses the bucket as http://endpoint/bucket/key instead
	// of http://bucket.endpoint/key. Most self-hosted servers need it; Open
	// turns it on by default when an endpoint is given.
	PathStyle bool
	// AccessKey and SecretKey, if set, are used instead of the AWS
	// credential chain (env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
	// shared files, instance roles). For programmatic use only: an s3://
	// URL cannot carry them (see CredentialsFile).
	AccessKey string
	SecretKey string
	// CredentialsFile, if set, names a file in the AWS shared credentials
	// format whose [default] profile holds aws_access_key_id and
	// aws_secret_access_key (and optionally aws_session_token). It is used
	// instead of the AWS credential chain and read again every
	// credentialsFileRefresh, so a rotated file takes effect without a
	// restart. URL parameter credentials_file.
	CredentialsFile string
	// CredentialsProfile names the profile of CredentialsFile to use
	// instead of [default] (OpenProfile: a tenant's credentials_ref in the
	// fleet's credentials file). Needs CredentialsFile.
	CredentialsProfile string
	// CAFile, if set, names a PEM bundle of CA certificates trusted for an
	// https endpoint instead of the system's roots. URL parameter ca_file.
	CAFile string
	// MaxAttempts bounds the attempts per request, including the first;
	// 0 means DefaultS3MaxAttempts.
	MaxAttempts int
	// MaxBackoff caps the jittered exponential delay between attempts;
	// 0 means DefaultS3MaxBackoff.
	MaxBackoff time.Duration
}

// Validate reports the first problem with the configuration, in words an
// operator can act on. It never echoes the secret key.
func (c S3Config) Validate() error {
	if c.Bucket == "" {
		return fmt.Errorf("s3 config: bucket is required")
	}
	if len(c.Bucket) > 255 || strings.ContainsFunc(c.Bucket, func(r rune) bool {
		return r == '/' || r == '?' || r == '#' || r == ':' || r == '@' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return fmt.Errorf("s3 config: bucket %q is not a valid bucket name", c.Bucket)
	}
	if p := normPrefix(c.Prefix); p != "" {
		if err := ValidateKey(p); err != nil {
			return fmt.Errorf("s3 config: prefix %q: %w", c.Prefix, err)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3 config: endpoint %q is not an http:// or https:// URL with a host", c.Endpoint)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("s3 config: endpoint %q must not have user info, a query or a fragment", u.Redacted())
		}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return fmt.Errorf("s3 config: access key and secret key must be given together (or neither, to use the AWS credential chain)")
	}
	if c.CredentialsFile != "" && c.AccessKey != "" {
		return fmt.Errorf("s3 config: give either a credentials file or an access key and secret key, not both")
	}
	if c.CredentialsProfile != "" && c.CredentialsFile == "" {
		return fmt.Errorf("s3 config: a credentials profile (%q) needs a credentials file", c.CredentialsProfile)
	}
	if c.CAFile != "" && c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "https://") {
		return fmt.Errorf("s3 config: a CA file (ca_file) is only meaningful with an https:// endpoint, and the endpoint is %q", c.Endpoint)
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > maxS3Attempts {
		return fmt.Errorf("s3 config: max attempts %d is outside 0..%d (0 means the default %d)", c.MaxAttempts, maxS3Attempts, DefaultS3MaxAttempts)
	}
	if c.MaxBackoff < 0 {
		return fmt.Errorf("s3 config: max backoff %s is negative", c.MaxBackoff)
	}
	return nil
}

// withDefaults fills in the zero values that have defaults.
func (c S3Config) withDefaults() S3Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultS3MaxAttempts
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultS3MaxBackoff
	}
	return c
}

// normPrefix strips the slashes around a configured prefix.
func normPrefix(p string) string { return strings.Trim(p, "/") }

// errSecretInURL explains why an s3:// URL cannot carry credentials and
// what to do instead. It never quotes the value given.
var errSecretInURL = errors.New("s3 URL: credentials are not accepted in the URL (access_key, secret_key or user info), " +
	"because URLs end up in process lists, shell history and logs; put them in a file in the AWS shared credentials format " +
	"([default] with aws_access_key_id and aws_secret_access_key) and name it with credentials_file=PATH, " +
	"or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or any other source of the AWS credential chain)")

// parseS3URL turns s3://bucket/prefix?params into an S3Config. Errors never
// quote the raw URL or a parameter's value that may be a secret.
func parseS3URL(u *url.URL) (S3Config, error) {
	if u.User != nil {
		return S3Config{}, errSecretInURL
	}
	if u.Port() != "" {
		return S3Config{}, fmt.Errorf("s3 URL: the host part is the bucket name and takes no port; put the server in the endpoint parameter")
	}
	cfg := S3Config{Bucket: u.Hostname(), Prefix: normPrefix(u.Path)}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return S3Config{}, fmt.Errorf("s3 URL: malformed query string")
	}
	if q.Has("access_key") || q.Has("secret_key") {
		return S3Config{}, errSecretInURL
	}
	pathStyleSet := false
	for name, vals := range q {
		if len(vals) != 1 {
			return S3Config{}, fmt.Errorf("s3 URL: parameter %q is given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			b, err := parseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("s3 URL: path_style=%q: want true or false", v)
			}
			cfg.PathStyle, pathStyleSet = b, true
		case "credentials_file", "ca_file":
			if v == "" {
				return S3Config{}, fmt.Errorf("s3 URL: %s needs a path", name)
			}
			if name == "ca_file" {
				cfg.CAFile = v
			} else {
				cfg.CredentialsFile = v
			}
		case "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("s3 URL: max_attempts=%q: want a whole number", v)
			}
			cfg.MaxAttempts = n
		case "max_backoff":
			d, err := time.ParseDuration(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("s3 URL: max_backoff=%q: want a duration such as 5s or 200ms", v)
			}
			cfg.MaxBackoff = d
		default:
			return S3Config{}, fmt.Errorf("s3 URL: unknown parameter %q (known: endpoint, region, path_style, credentials_file, ca_file, max_attempts, max_backoff)", name)
		}
	}
	if !pathStyleSet && cfg.Endpoint != "" {
		cfg.PathStyle = true
	}
	return cfg, cfg.Validate()
}

func parseBool(v string) (bool, error) {
	switch v {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}
