// Package s3test runs a real S3-compatible server (versitygw with its POSIX
// backend) on 127.0.0.1 for tests of S3 code.
//
// Start finds the versitygw binary (built by scripts/install-tools.sh into
// <repo>/.tools/bin), starts it on a free port with a fresh backend
// directory, creates a bucket and stops the server when the test ends. If the
// binary is missing the test is skipped, unless TISTREAM_REQUIRE_S3=1 (set by
// `make test` in CI), in which case it fails: the S3 tests must never be
// skipped silently there.
package s3test
