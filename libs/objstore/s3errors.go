package objstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// httpStatus returns the HTTP status of an S3 error response, or 0 if the
// request got no response.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.HTTPStatusCode()
	}
	return 0
}

// apiCode returns the S3 error code ("NoSuchKey", "SlowDown"...), or "".
func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// isNoSuchKey reports a missing object. A bare 404 counts too (HEAD
// responses carry no error code), but not a missing bucket: that is a
// configuration problem, not an absent object.
func isNoSuchKey(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == 404
}

// isPreconditionFailed reports If-None-Match losing: the key exists.
func isPreconditionFailed(err error) bool {
	return httpStatus(err) == 412 || apiCode(err) == "PreconditionFailed"
}

// isInvalidRange reports a Range that starts at or past the end.
func isInvalidRange(err error) bool {
	return httpStatus(err) == 416 || apiCode(err) == "InvalidRange"
}

// opErr wraps an S3 error with the operation, the key and the store, and
// says plainly when the retry budget ran out.
func (s *S3) opErr(op, key string, err error) error {
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		return fmt.Errorf("%s %s in %s: gave up after %d attempts: %w", op, key, s, maxErr.Attempt, err)
	}
	return fmt.Errorf("%s %s in %s: %w", op, key, s, err)
}

// credentialCodes are the S3 error codes of a request whose credentials were
// not accepted. versitygw answers an unknown access key id with 404
// XAdminUserNotFound where AWS says 403 InvalidAccessKeyId.
var credentialCodes = map[string]bool{
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"AccessDenied":          true,
	"XAdminUserNotFound":    true,
}

// headOnlyCodes are the codes the SDK makes up from the bare status of a
// HEAD answer, which has no body to carry the server's own code.
var headOnlyCodes = map[string]bool{"": true, "Forbidden": true, "NotFound": true}

// bucketErr turns a failed HeadBucket into an error an operator can act on.
// HEAD answers carry no error code, and a 403 or 404 alone cannot tell a
// missing bucket from rejected credentials (see credentialCodes), so those
// are asked again with a one-key listing, whose error has a code.
func (s *S3) bucketErr(ctx context.Context, creds aws.CredentialsProvider, err error) error {
	where := fmt.Sprintf("s3 bucket %q at endpoint %s", s.bucket, s.endpoint)
	if st := httpStatus(err); (st == 403 || st == 404) && headOnlyCodes[apiCode(err)] {
		_, lerr := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, MaxKeys: aws.Int32(1)})
		if apiCode(lerr) != "" {
			err = lerr
		}
	}
	status, code := httpStatus(err), apiCode(err)
	switch {
	case isCertificateError(err):
		return fmt.Errorf("%s: the server's TLS certificate is not trusted (%v); if a private CA signed it, name its PEM bundle with ca_file=PATH",
			where, certificateCause(err))
	case credentialCodes[code] || status == 403:
		return fmt.Errorf("%s: credentials with access key id %q were rejected or lack access to the bucket (HTTP %d %s)",
			where, accessKeyID(ctx, creds), status, code)
	case code == "NoSuchBucket" || code == "NotFound" || status == 404:
		return fmt.Errorf("s3 bucket %q does not exist at endpoint %s", s.bucket, s.endpoint)
	case status == 301 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed":
		return fmt.Errorf("%s: the bucket is in another region than %q (HTTP %d %s); set the region", where, s.region, status, code)
	}
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		return fmt.Errorf("%s: not reachable, gave up after %d attempts: %w", where, maxErr.Attempt, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// accessKeyID names the access key in use, for error messages. The secret is
// never read out.
func accessKeyID(ctx context.Context, creds aws.CredentialsProvider) string {
	if creds == nil {
		return "(none)"
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return "(unavailable)"
	}
	return c.AccessKeyID
}

// certificateCause is the innermost TLS verification error, without the
// SDK's request wrapping.
func certificateCause(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return verr.Err
	}
	return err
}
