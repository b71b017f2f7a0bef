package objstore

import (
	"net/http"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"
)

func TestJitterBackoffStaysUnderCeiling(t *testing.T) {
	b := jitterBackoff{base: 100 * time.Millisecond, ceiling: 5 * time.Second}
	for attempt := range 70 {
		limit := b.ceiling
		if attempt < 16 { // beyond, base<<attempt is far past the ceiling
			limit = min(limit, b.base<<attempt)
		}
		for range 50 {
			d, err := b.BackoffDelay(attempt, nil)
			require.NoError(t, err)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, limit, "attempt %d", attempt)
		}
	}
	d, err := jitterBackoff{}.BackoffDelay(3, nil)
	require.NoError(t, err)
	require.Zero(t, d)
}

// s3Err builds the error the SDK returns for an S3 error response.
func s3Err(status int, code string) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code},
	}
}

func TestRetryerClassifiesErrors(t *testing.T) {
	r := newRetryer(DefaultS3MaxAttempts, DefaultS3MaxBackoff)
	require.Equal(t, DefaultS3MaxAttempts, r.MaxAttempts())
	for _, c := range []struct {
		err       error
		retryable bool
		refused   bool // the server certainly did not apply the request
	}{
		{s3Err(503, "SlowDown"), true, true},
		{s3Err(400, "SlowDown"), true, true},
		{s3Err(400, "Throttling"), true, true},
		{s3Err(429, "TooManyRequests"), true, true},
		{s3Err(409, "ConditionalRequestConflict"), true, true},
		{s3Err(500, "InternalError"), true, false},
		{s3Err(504, "GatewayTimeout"), true, false},
		{s3Err(412, "PreconditionFailed"), false, false},
		{s3Err(404, "NoSuchKey"), false, false},
		{s3Err(403, "AccessDenied"), false, false},
	} {
		require.Equal(t, c.retryable, r.IsErrorRetryable(c.err), "%v", c.err)
		require.Equal(t, c.refused, refusedBeforeApplying(c.err), "%v", c.err)
	}
}

func TestS3ErrorClassifiers(t *testing.T) {
	require.True(t, isNoSuchKey(s3Err(404, "NoSuchKey")))
	require.True(t, isNoSuchKey(s3Err(404, "NotFound")))
	require.True(t, isNoSuchKey(s3Err(404, "")))
	require.False(t, isNoSuchKey(s3Err(404, "NoSuchBucket")), "a missing bucket is no missing key")
	require.True(t, isPreconditionFailed(s3Err(412, "PreconditionFailed")))
	require.True(t, isInvalidRange(s3Err(416, "InvalidRange")))
	require.Equal(t, 0, httpStatus(smithy.NewErrParamRequired("x")))
}

func TestRangeHeader(t *testing.T) {
	for _, c := range []struct {
		off, n int64
		want   string
	}{
		{0, -1, "bytes=0-"},
		{2, 3, "bytes=2-4"},
		{5, 1<<63 - 1, "bytes=5-"},
		{-7, 99, "bytes=-7"},
		{-1 << 63, 0, "bytes=-9223372036854775807"},
	} {
		require.Equal(t, c.want, rangeHeader(c.off, c.n))
	}
}
