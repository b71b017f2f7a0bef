package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/s3test"
)

// fault is what faultProxy does with one request.
type fault int

const (
	pass         fault = iota // forward to the server
	slowDown                  // answer 503 SlowDown without forwarding
	tooMany                   // answer 429 without forwarding
	internal                  // answer 500 InternalError without forwarding
	conflict                  // answer 409 ConditionalRequestConflict without forwarding
	dropConn                  // close the connection without answering
	lostResponse              // forward, then answer 500 instead of the server's reply
)

// faultProxy is a reverse proxy on 127.0.0.1 in front of the S3 server that
// injects faults into the requests of one HTTP method, as rule decides from
// the request's 1-based number among that method's requests.
type faultProxy struct {
	URL string

	mu     sync.Mutex
	method string
	rule   func(n int) fault
	counts map[string]int
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &faultProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Header.Get("X-Test-Lose-Response") == "" {
			return nil
		}
		// The server did the work; the client is told it failed.
		resp.Body.Close()
		body := s3ErrorXML("InternalError", "injected: response lost")
		resp.StatusCode, resp.Status = 500, "500 Internal Server Error"
		resp.Body = io.NopCloser(strings.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.decide(r.Method)
		if f != pass && f != lostResponse {
			// Read the body first, as a server does before an error
			// reply, so the client does not fail on a broken pipe instead.
			_, _ = io.Copy(io.Discard, r.Body)
		}
		switch f {
		case pass:
			rp.ServeHTTP(w, r)
		case lostResponse:
			r.Header.Set("X-Test-Lose-Response", "1")
			rp.ServeHTTP(w, r)
		case slowDown:
			writeS3Error(w, 503, "SlowDown", "Please reduce your request rate.")
		case tooMany:
			writeS3Error(w, 429, "TooManyRequests", "injected")
		case internal:
			writeS3Error(w, 500, "InternalError", "injected")
		case conflict:
			writeS3Error(w, 409, "ConditionalRequestConflict", "injected")
		case dropConn:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// inject makes rule decide the fate of requests with the given method.
func (p *faultProxy) inject(method string, rule func(n int) fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.method, p.rule = method, rule
	p.counts = map[string]int{}
}

func (p *faultProxy) decide(method string) fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[method]++
	if p.rule == nil || method != p.method {
		return pass
	}
	return p.rule(p.counts[method])
}

// count returns how many requests of method the proxy saw since inject.
func (p *faultProxy) count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

func s3ErrorXML(code, msg string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s3ErrorXML(code, msg))
}

// firstN fails the first n requests with f and passes the rest.
func firstN(n int, f fault) func(int) fault {
	return func(i int) fault {
		if i <= n {
			return f
		}
		return pass
	}
}

// proxiedStore is an S3 store reaching srv through a fault proxy.
func proxiedStore(t *testing.T, srv *s3test.Server, maxAttempts int) (*objstore.S3, *faultProxy) {
	p := startFaultProxy(t, srv.Endpoint)
	cfg := s3Config(srv, strings.ReplaceAll(t.Name(), "/", "-"))
	cfg.Endpoint = p.URL
	cfg.MaxAttempts = maxAttempts
	s, err := objstore.NewS3(context.Background(), cfg)
	require.NoError(t, err)
	return s, p
}

func TestS3RetriesTransientFailures(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		fault  fault
		ifNone bool
	}{
		{"503 SlowDown", slowDown, false},
		{"429 Too Many Requests", tooMany, false},
		{"500 InternalError", internal, false},
		{"connection dropped", dropConn, false},
		{"503 SlowDown on put-if-absent", slowDown, true},
		{"409 ConditionalRequestConflict", conflict, true},
		{"dropped put-if-absent", dropConn, true},
	} {
		for _, parts := range []bool{false, true} {
			name := c.name
			if parts {
				name += " in parts"
			}
			t.Run(name, func(t *testing.T) {
				s, p := proxiedStore(t, srv, 4)
				p.inject("PUT", firstN(3, c.fault))
				put := s.Put
				if c.ifNone {
					put = s.PutIfAbsent
				}
				if parts {
					// The body of parts is sent again from its start on
					// every retry.
					put = func(ctx context.Context, key string, data []byte) error {
						return putInParts(ctx, s, key, data, c.ifNone)
					}
				}
				require.NoError(t, put(ctx, "k", []byte("survived")))
				require.Equal(t, 4, p.count("PUT"), "3 failures and the success")
				got, err := s.Get(ctx, "k")
				require.NoError(t, err)
				require.Equal(t, "survived", string(got))
			})
		}
	}
	t.Run("reads too", func(t *testing.T) {
		s, p := proxiedStore(t, srv, 4)
		require.NoError(t, s.Put(ctx, "k", []byte("0123456789")))
		p.inject("GET", firstN(3, slowDown))
		got, err := s.GetRange(ctx, "k", 2, 3)
		require.NoError(t, err)
		require.Equal(t, "234", string(got))
		require.Equal(t, 4, p.count("GET"))
	})
}

func TestS3GivesUpAfterMaxAttempts(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, p := proxiedStore(t, srv, 3)
	always := func(int) fault { return slowDown }

	p.inject("PUT", always)
	err := s.Put(ctx, "doomed", []byte("x"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "put doomed in s3://"+srv.Bucket)
	require.Contains(t, err.Error(), "gave up after 3 attempts")
	require.Contains(t, err.Error(), "SlowDown")
	require.Equal(t, 3, p.count("PUT"))

	p.inject("GET", always)
	_, err = s.Get(ctx, "doomed")
	require.ErrorContains(t, err, "gave up after 3 attempts")
	require.NotErrorIs(t, err, objstore.ErrNotFound)
	require.Equal(t, 3, p.count("GET"))

	// A server that never answers well fails NewS3 the same way.
	p.inject("HEAD", always)
	cfg := s3Config(srv, "")
	cfg.Endpoint, cfg.MaxAttempts = p.URL, 2
	_, err = objstore.NewS3(ctx, cfg)
	require.ErrorContains(t, err, "gave up after 2 attempts")
	require.ErrorContains(t, err, fmt.Sprintf("s3 bucket %q at endpoint %s", srv.Bucket, p.URL))
	require.Equal(t, 2, p.count("HEAD"))
}

func TestS3PutIfAbsentAmbiguousRetry(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s, p := proxiedStore(t, srv, 4)

	// The first attempt creates the object but its answer is lost; the retry
	// meets our own object (412). That is a win, not a loss.
	p.inject("PUT", firstN(1, lostResponse))
	require.NoError(t, s.PutIfAbsent(ctx, "mine", []byte("owner-1")))
	require.Equal(t, 2, p.count("PUT"))

	// The same ambiguity in front of somebody else's object is a loss.
	p.inject("PUT", nil)
	require.NoError(t, s.Put(ctx, "theirs", []byte("owner-2")))
	p.inject("PUT", firstN(1, internal))
	require.ErrorIs(t, s.PutIfAbsent(ctx, "theirs", []byte("owner-1")), objstore.ErrExists)
	got, err := s.Get(ctx, "theirs")
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte("owner-2"), got))

	// Without an ambiguous attempt, equal bytes are still a loss.
	p.inject("PUT", firstN(1, slowDown))
	require.ErrorIs(t, s.PutIfAbsent(ctx, "theirs", []byte("owner-2")), objstore.ErrExists)

	// The same in parts: our own object is compared with the parts.
	p.inject("PUT", firstN(1, lostResponse))
	require.NoError(t, objstore.PutIfAbsentParts(ctx, s, "mine-in-parts", []byte("own"), nil, []byte("er-"), []byte("1")))
	require.Equal(t, 2, p.count("PUT"))
	got, err = s.Get(ctx, "mine-in-parts")
	require.NoError(t, err)
	require.Equal(t, "owner-1", string(got))
	p.inject("PUT", firstN(1, internal))
	require.ErrorIs(t, objstore.PutIfAbsentParts(ctx, s, "theirs", []byte("owner"), []byte("-1")), objstore.ErrExists)
	p.inject("PUT", firstN(1, internal))
	require.ErrorIs(t, objstore.PutIfAbsentParts(ctx, s, "theirs", []byte("owner"), []byte("-2"), []byte("x")), objstore.ErrExists,
		"their bytes and more are not ours")
}

// putInParts writes data in three parts (one of them empty).
func putInParts(ctx context.Context, s objstore.Store, key string, data []byte, ifAbsent bool) error {
	parts := [][]byte{data[:len(data)/2], nil, data[len(data)/2:]}
	if ifAbsent {
		return objstore.PutIfAbsentParts(ctx, s, key, parts...)
	}
	return objstore.PutParts(ctx, s, key, parts...)
}
