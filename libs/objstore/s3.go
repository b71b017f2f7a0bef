package objstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// responseHeaderTimeout bounds how long one attempt waits for the server to
// start answering once the request is sent; a server that hangs then counts
// as a transient failure and is retried rather than blocking forever.
const responseHeaderTimeout = 60 * time.Second

// S3 is a Store in an S3 bucket, under an optional key prefix.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or "p/q/": prepended to every key
	endpoint string // for error messages
	region   string
	name     string
}

var (
	_ Store       = (*S3)(nil)
	_ PartsPutter = (*S3)(nil)
)

// NewS3 connects to the bucket cfg names and checks that it exists and that
// the credentials are accepted, so misconfiguration shows at startup with a
// clear message rather than on the first write.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var roots *x509.CertPool
	if cfg.CAFile != "" {
		var err error
		if roots, err = loadCAFile(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	opts := []func(*config.LoadOptions) error{
		// The SDK now adds CRC checksums to every upload and asks for them
		// on downloads ("when supported"). S3-compatible servers differ in
		// how much of that they implement (aws-chunked trailers above all),
		// so only the operations whose API demands a checksum send one. TLS
		// (or SigV4's payload hash on plain HTTP) still guards the bytes.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = responseHeaderTimeout
			if roots != nil {
				if tr.TLSClientConfig == nil {
					tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				tr.TLSClientConfig.RootCAs = roots
			}
		})),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	switch {
	case cfg.AccessKey != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	case cfg.CredentialsFile != "":
		// Read it now, so that a missing or malformed file shows at startup.
		if _, err := readCredentialsFile(cfg.CredentialsFile, cfg.CredentialsProfile); err != nil {
			return nil, fmt.Errorf("s3 bucket %q: %w", cfg.Bucket, err)
		}
		opts = append(opts, config.WithCredentialsProvider(aws.NewCredentialsCache(&fileCredentials{path: cfg.CredentialsFile, profile: cfg.CredentialsProfile})))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %q: load AWS configuration: %w", cfg.Bucket, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	s := &S3{
		bucket:   cfg.Bucket,
		endpoint: cfg.Endpoint,
		region:   awsCfg.Region,
		name:     "s3://" + cfg.Bucket,
	}
	if s.endpoint == "" {
		s.endpoint = "(AWS default for region " + awsCfg.Region + ")"
	}
	if p := normPrefix(cfg.Prefix); p != "" {
		s.prefix = p + "/"
		s.name += "/" + p
	}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = newRetryer(cfg.MaxAttempts, cfg.MaxBackoff)
	})
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return nil, s.bucketErr(ctx, awsCfg.Credentials, err)
	}
	return s, nil
}

// String implements Store.
func (s *S3) String() string { return s.name }

// fullKey is the S3 object key of a store key.
func (s *S3) fullKey(key string) *string { return aws.String(s.prefix + key) }

// Put implements Store. S3 replaces objects atomically.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, [][]byte{data})
}

// PutParts implements PartsPutter: Put, with a request body that reads the
// parts one after another.
func (s *S3) PutParts(ctx context.Context, key string, parts [][]byte) error {
	return s.put(ctx, key, parts)
}

func (s *S3) put(ctx context.Context, key string, parts [][]byte) error {
	if err := checkOp(ctx, "put", key); err != nil {
		return err
	}
	body, n := partsBody(parts)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           s.fullKey(key),
		Body:          body,
		ContentLength: aws.Int64(n),
	})
	if err != nil {
		return s.opErr("put", key, err)
	}
	return nil
}

// PutIfAbsent implements Store with a conditional write (If-None-Match: *).
func (s *S3) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.putIfAbsent(ctx, key, [][]byte{data})
}

// PutIfAbsentParts implements PartsPutter: PutIfAbsent, with a request
// body that reads the parts one after another.
func (s *S3) PutIfAbsentParts(ctx context.Context, key string, parts [][]byte) error {
	return s.putIfAbsent(ctx, key, parts)
}

func (s *S3) putIfAbsent(ctx context.Context, key string, parts [][]byte) error {
	if err := checkOp(ctx, "put-if-absent", key); err != nil {
		return err
	}
	rec := &ambiguityRecorder{}
	body, n := partsBody(parts)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           s.fullKey(key),
		Body:          body,
		ContentLength: aws.Int64(n),
		IfNoneMatch:   aws.String("*"),
	}, func(o *s3.Options) {
		if r, ok := o.Retryer.(aws.RetryerV2); ok {
			rec.RetryerV2 = r
			o.Retryer = rec
		}
	})
	switch {
	case err == nil:
		return nil
	case isPreconditionFailed(err):
		// After an attempt that may have been applied, a 412 can be our own
		// earlier write. The bytes tell: callers that need fencing write
		// content unique to the writer, so equal bytes mean we won.
		if rec.ambiguous.Load() {
			if got, gerr := s.Get(ctx, key); gerr == nil && equalParts(got, parts) {
				return nil
			}
		}
		return fmt.Errorf("put-if-absent %s in %s: %w", key, s, ErrExists)
	default:
		return s.opErr("put-if-absent", key, err)
	}
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkOp(ctx, "get", key); err != nil {
		return nil, err
	}
	data, _, err := s.get(ctx, key, "")
	return data, err
}

// GetRange implements Store with an HTTP Range header.
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	return s.getRange(ctx, key, off, n, nil)
}

// GetRangeInto implements RangeIntoGetter: the response body is read into
// buf.
func (s *S3) GetRangeInto(ctx context.Context, key string, off int64, buf []byte) ([]byte, error) {
	if off < 0 {
		return nil, negativeOffsetErr(key, off)
	}
	data, err := s.getRange(ctx, key, off, int64(len(buf)), buf)
	if err != nil || len(data) == 0 {
		return buf[:0], err
	}
	if &data[0] != &buf[0] {
		// The server sent more than the range (the whole object), or
		// nothing fit buf: the range goes to the front of buf.
		data = buf[:copy(buf, data)]
	}
	return data, nil
}

// getRange reads into buf when it is not nil and holds the body.
func (s *S3) getRange(ctx context.Context, key string, off, n int64, buf []byte) ([]byte, error) {
	if err := checkOp(ctx, "get", key); err != nil {
		return nil, err
	}
	if off >= 0 && n == 0 {
		// No Range header can ask for zero bytes; check existence and bounds.
		return s.emptyRange(ctx, key, off, n)
	}
	data, partial, err := s.getInto(ctx, key, rangeHeader(off, n), buf)
	if err != nil {
		if isInvalidRange(err) {
			// S3 refuses ranges starting at the end, which the contract
			// answers with no bytes, and any range of an empty object.
			return s.emptyRange(ctx, key, off, n)
		}
		return nil, err
	}
	if !partial {
		// The server ignored the Range header and sent the whole object.
		start, end, err := clipRange(key, int64(len(data)), off, n)
		if err != nil {
			return nil, fmt.Errorf("get %s in %s: %w", key, s, err)
		}
		data = data[start:end]
	}
	return data, nil
}

// rangeHeader renders GetRange's (off, n) as an HTTP Range; n != 0 if off >= 0.
func rangeHeader(off, n int64) string {
	switch {
	case off < 0:
		suffix := -off
		if suffix < 0 { // off was math.MinInt64
			suffix = 1<<63 - 1
		}
		return fmt.Sprintf("bytes=-%d", suffix)
	case n < 0 || n > 1<<63-1-off:
		return fmt.Sprintf("bytes=%d-", off)
	default:
		return fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	}
}

// emptyRange answers a GetRange that selects no bytes from the object's size:
// empty data, or ErrInvalidRange if off is beyond the end.
func (s *S3) emptyRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: s.fullKey(key)})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, fmt.Errorf("get %s in %s: %w", key, s, ErrNotFound)
		}
		return nil, s.opErr("get", key, err)
	}
	size := aws.ToInt64(head.ContentLength)
	start, end, err := clipRange(key, size, off, n)
	if err != nil {
		return nil, fmt.Errorf("get %s in %s: %w", key, s, err)
	}
	if start != end {
		// The object changed between the ranged GET and the HEAD.
		return nil, fmt.Errorf("get %s in %s: object changed while reading, range %d+%d now selects %d bytes", key, s, off, n, end-start)
	}
	return []byte{}, nil
}

// get fetches the object, or the part rng selects, and reports whether the
// answer was partial (206 with Content-Range) rather than the whole object.
func (s *S3) get(ctx context.Context, key, rng string) ([]byte, bool, error) {
	return s.getInto(ctx, key, rng, nil)
}

// getInto is get reading the body into buf when it holds it (a new buffer
// otherwise).
func (s *S3) getInto(ctx context.Context, key, rng string, buf []byte) ([]byte, bool, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: s.fullKey(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if isNoSuchKey(err) {
			return nil, false, fmt.Errorf("get %s in %s: %w", key, s, ErrNotFound)
		}
		return nil, false, s.opErr("get", key, err)
	}
	defer out.Body.Close()
	// Size the buffer from Content-Length, but do not let a bogus header
	// allocate more than a sane object up front.
	want := aws.ToInt64(out.ContentLength)
	if out.ContentLength != nil && want >= 0 && int64(cap(buf)) >= want {
		// The body fits: read it straight into buf. (A bytes.Buffer
		// whose buffer the body fills exactly grows it to look for the
		// end, when the end does not come with the last bytes: a new
		// buffer of twice the size and a copy.)
		data := buf[:want]
		n, err := io.ReadFull(out.Body, data)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, false, fmt.Errorf("get %s in %s: body has %d bytes, Content-Length said %d", key, s, n, want)
		}
		if err == nil {
			var extra [1]byte
			if m, end := io.ReadFull(out.Body, extra[:]); m > 0 {
				return nil, false, fmt.Errorf("get %s in %s: body has more than the %d bytes Content-Length said", key, s, want)
			} else if !errors.Is(end, io.EOF) {
				err = end
			}
		}
		if err != nil {
			return nil, false, fmt.Errorf("get %s in %s: read body: %w", key, s, err)
		}
		return data, out.ContentRange != nil, nil
	}
	if want < 0 || int64(cap(buf)) < want {
		buf = make([]byte, 0, min(max(want, 0), 64<<20))
	}
	body := bytes.NewBuffer(buf[:0])
	if _, err := io.Copy(body, out.Body); err != nil {
		return nil, false, fmt.Errorf("get %s in %s: read body: %w", key, s, err)
	}
	if out.ContentLength != nil && int64(body.Len()) != want {
		return nil, false, fmt.Errorf("get %s in %s: body has %d bytes, Content-Length said %d", key, s, body.Len(), want)
	}
	return body.Bytes(), out.ContentRange != nil, nil
}

// List implements Store with ListObjectsV2; S3 lists keys in UTF-8 binary
// order, which is byte order.
func (s *S3) List(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("list %s prefix %q: %w", s, prefix, err)
	}
	// S3 serves at most 1000 keys per call and then reports truncation,
	// which "up to limit" allows.
	in := &s3.ListObjectsV2Input{
		Bucket:  &s.bucket,
		Prefix:  aws.String(s.prefix + prefix),
		MaxKeys: aws.Int32(int32(min(pageLimit(limit), 1000))),
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.prefix + startAfter)
	}
	out, err := s.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, s.opErr("list prefix", fmt.Sprintf("%q after %q", prefix, startAfter), err)
	}
	objs := make([]ObjectInfo, 0, len(out.Contents))
	for _, o := range out.Contents {
		k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
		if !ok {
			return nil, false, fmt.Errorf("list %s prefix %q: server returned key %q outside the prefix", s, prefix, aws.ToString(o.Key))
		}
		objs = append(objs, ObjectInfo{Key: k, Size: aws.ToInt64(o.Size)})
	}
	return objs, aws.ToBool(out.IsTruncated), nil
}

// Delete implements Store. S3 answers deletes of missing keys with success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkOp(ctx, "delete", key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: s.fullKey(key)})
	if err != nil && !isNoSuchKey(err) {
		return s.opErr("delete", key, err)
	}
	return nil
}
