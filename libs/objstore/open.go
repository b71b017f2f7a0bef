package objstore

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
)

// Open returns the store a URL names:
//
//	file:///abs/path            local file system store rooted there
//	file://./rel/path           the same, relative to the working directory
//	s3://bucket/prefix?params   S3 store (see S3Config and docs/object-storage.md)
//	mem://                      a new, empty in-memory store
//
// Unknown schemes and parameters are errors, and so are credentials in an
// s3:// URL (use its credentials_file parameter or the AWS credential
// chain). Errors never quote the URL itself.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open store: malformed URL (want file://, s3:// or mem://)")
	}
	switch u.Scheme {
	case "file":
		dir, err := fileURLPath(u)
		if err != nil {
			return nil, err
		}
		return NewLocalFS(dir)
	case "s3":
		cfg, err := parseS3URL(u)
		if err != nil {
			return nil, err
		}
		return NewS3(ctx, cfg)
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Opaque != "" {
			return nil, fmt.Errorf("open store: mem:// takes no name, path or parameters")
		}
		return NewMemory(), nil
	default:
		return nil, fmt.Errorf("open store: unsupported scheme %q (want file, s3 or mem)", u.Scheme)
	}
}

// fileURLPath returns the directory of a file:// URL: file:///abs for an
// absolute path, file://./rel or file://../rel for a relative one.
func fileURLPath(u *url.URL) (string, error) {
	if u.Opaque != "" {
		return "", fmt.Errorf("open store: file URL %q: write file:///abs/path or file://./rel/path", u.Redacted())
	}
	if u.RawQuery != "" {
		return "", fmt.Errorf("open store: file URL %q: file stores take no parameters", u.Path)
	}
	if u.User != nil || u.Port() != "" {
		return "", fmt.Errorf("open store: file URL: user info and ports make no sense for a local path")
	}
	switch u.Host {
	case "":
		if u.Path == "" {
			return "", fmt.Errorf("open store: file URL has no path")
		}
		return filepath.FromSlash(u.Path), nil
	case ".", "..":
		return filepath.Join(u.Host, filepath.FromSlash(u.Path)), nil
	default:
		return "", fmt.Errorf("open store: file URL names host %q; only local paths are supported (file:///abs/path or file://./rel/path)", u.Host)
	}
}
