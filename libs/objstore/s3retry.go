package objstore

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// baseBackoff is the delay ceiling of the first retry; it doubles per
// attempt up to MaxBackoff.
const baseBackoff = 100 * time.Millisecond

// newRetryer builds the SDK retryer every S3 request goes through.
//
// The SDK's standard retryables already cover 5xx, connection resets,
// timeouts and the throttling codes (SlowDown, Throttling, RequestLimit...).
// On top of them:
//   - 429 Too Many Requests, which some S3-compatible servers send instead
//     of 503 SlowDown;
//   - 409 ConditionalRequestConflict, S3's answer to a conditional write
//     racing another one on the same key: the write did not happen and a
//     retry gets a definite answer (success or 412).
//
// and, before them all, a server certificate that is not trusted is never
// retried.
//
// Two SDK defaults are replaced. The backoff is full jitter over a capped
// exponential (the SDK's legacy backoff stops jittering once it reaches the
// cap, so clients hammering a recovering server stay in lockstep). And the
// retry token bucket is off: it is shared by every request of the client, so
// after an outage it would fail unrelated requests on their first error; the
// attempt limit already bounds what one request can cost.
func newRetryer(maxAttempts int, maxBackoff time.Duration) aws.RetryerV2 {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.Backoff = jitterBackoff{base: min(baseBackoff, maxBackoff), ceiling: maxBackoff}
		o.RateLimiter = ratelimit.None
		// An untrusted server certificate stays untrusted: fail at once
		// (the SDK counts any failed send as a retryable connection error).
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if isCertificateError(err) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, o.Retryables...)
		o.Retryables = append(o.Retryables,
			retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{429: {}}},
			retry.RetryableErrorCode{Codes: map[string]struct{}{"ConditionalRequestConflict": {}}},
		)
	})
}

// jitterBackoff waits a uniformly random time in [0, min(ceiling, base*2^attempt)).
type jitterBackoff struct {
	base, ceiling time.Duration
}

// BackoffDelay implements retry.BackoffDelayer.
func (b jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	limit := b.ceiling
	// Shifting by 40 already exceeds any sane ceiling; stop before overflow.
	if attempt >= 0 && attempt < 40 {
		if d := b.base << attempt; d > 0 && d < limit {
			limit = d
		}
	}
	if limit <= 0 {
		return 0, nil
	}
	return rand.N(limit), nil
}

// ambiguityRecorder wraps the retryer of one request and notes whether an
// attempt failed in a way that leaves open whether the server applied it (a
// connection reset after the body was sent, a 500 or 504). PutIfAbsent needs
// that: if such an attempt created the object, the retry is answered 412 and
// the caller would wrongly be told it lost.
type ambiguityRecorder struct {
	aws.RetryerV2
	ambiguous atomic.Bool
}

// IsErrorRetryable implements aws.Retryer.
func (r *ambiguityRecorder) IsErrorRetryable(err error) bool {
	ok := r.RetryerV2.IsErrorRetryable(err)
	if ok && !refusedBeforeApplying(err) {
		r.ambiguous.Store(true)
	}
	return ok
}

// refusedBeforeApplying reports errors with which S3 says it did not perform
// the request: throttling and conditional-write conflicts.
func refusedBeforeApplying(err error) bool {
	switch httpStatus(err) {
	case 409, 429, 503:
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		_, throttled := retry.DefaultThrottleErrorCodes[apiErr.ErrorCode()]
		return throttled
	}
	return false
}
