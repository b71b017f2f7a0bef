// Package kmstest runs local-kms (github.com/nsmithuk/local-kms, an
// AWS-KMS-compatible server) for the tests of crypt.AWSKMS, through
// tistream-localkms (scripts/localkms, built by scripts/install-tools.sh),
// which serves it on 127.0.0.1 only: a fresh server per test with its
// database in t.TempDir(). Without the binary the tests skip, unless
// TISTREAM_REQUIRE_KMS=1 makes that a failure.
package kmstest
