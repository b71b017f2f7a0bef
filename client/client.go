package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Options tune a Client. The zero value of a field takes its default.
type Options struct {
	// Backoff between reconnects starts at MinBackoff (100 ms), doubles up
	// to MaxBackoff (10 s), and is jittered: a random wait between half
	// and all of it, so many clients of a restarted server spread out.
	MinBackoff, MaxBackoff time.Duration
	// RetryLimit is how many reconnects in a row may fail (no event
	// received in between) before Next gives up with ErrGaveUp (30; a
	// negative value retries forever).
	RetryLimit int
	// Logger gets a line per reconnect (slog.Default()).
	Logger *slog.Logger
	// Sleep waits between reconnects; tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
	// TLS makes Dial connect over TLS with this configuration: RootCAs
	// (the fleet's CA) and, for a certificate identity, Certificates (a
	// reader certificate, spiffe://tistream/reader/<tenants>/<name>). A
	// fleet runs with TLS unless it was started --insecure
	// (docs/security.md).
	TLS *tls.Config
	// Token is a bearer token (tistream token) sent with every call; it
	// needs TLS.
	Token string
}

func (o *Options) defaults() {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.RetryLimit == 0 {
		o.RetryLimit = 30
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Client talks to one api-server address (or a load balancer in front of
// several: every reconnect may land on another).
type Client struct {
	api  apiv1.TiStreamServiceClient
	conn *grpc.ClientConn // owned when Dial made it
	opts Options
}

// Dial connects to an api-server at addr (host:port): over TLS with
// opts.TLS and opts.Token, else in plaintext (a fleet run --insecure).
func Dial(addr string, opts Options) (*Client, error) {
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		creds = credentials.NewTLS(opts.TLS)
	}
	dial := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20))}
	if opts.Token != "" {
		if opts.TLS == nil {
			return nil, fmt.Errorf("tistream: a token is only sent over TLS: set Options.TLS")
		}
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(opts.Token)))
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("tistream: dial %s: %w", addr, err)
	}
	c := New(conn, opts)
	c.conn = conn
	return c, nil
}

// bearer sends the token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// New is a client on a connection the caller made (TLS, credentials,
// interceptors are the caller's); Close does not close it.
func New(conn grpc.ClientConnInterface, opts Options) *Client {
	opts.defaults()
	return &Client{api: apiv1.NewTiStreamServiceClient(conn), opts: opts}
}

// Close closes the connection Dial made.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// API is the generated client, for calls this package does not wrap.
func (c *Client) API() apiv1.TiStreamServiceClient { return c.api }

// Target is what a pull reads: a table, a database or a whole tenant.
type Target struct {
	Tenant  uint64
	TableID int64  // a table by id (wins over names)
	DB      string // a table's or a database's name
	Table   string // a table by name, with DB
}

// Table is a table of a tenant by database and table name.
func Table(tenant uint64, db, table string) Target {
	return Target{Tenant: tenant, DB: db, Table: table}
}

// TableByID is a table of a tenant by id.
func TableByID(tenant uint64, id int64) Target { return Target{Tenant: tenant, TableID: id} }

// DB is every table of a database, tables created in it later included.
func DB(tenant uint64, db string) Target { return Target{Tenant: tenant, DB: db} }

// Tenant is every table of a tenant.
func Tenant(tenant uint64) Target { return Target{Tenant: tenant} }

func (t Target) isTable() bool { return t.TableID != 0 || t.Table != "" }

func (t Target) String() string {
	switch {
	case t.TableID != 0:
		return fmt.Sprintf("tenant %d table %d", t.Tenant, t.TableID)
	case t.Table != "":
		return fmt.Sprintf("tenant %d table %s.%s", t.Tenant, t.DB, t.Table)
	case t.DB != "":
		return fmt.Sprintf("tenant %d database %s", t.Tenant, t.DB)
	}
	return fmt.Sprintf("tenant %d", t.Tenant)
}

func (t Target) validate() error {
	switch {
	case t.Tenant == 0:
		return fmt.Errorf("%w: no tenant", ErrInvalidArgument)
	case t.TableID < 0:
		return fmt.Errorf("%w: negative table id %d", ErrInvalidArgument, t.TableID)
	case t.Table != "" && t.DB == "" && t.TableID == 0:
		return fmt.Errorf("%w: table %q without its database", ErrInvalidArgument, t.Table)
	}
	return nil
}

// open starts one server stream of the target from start.
func (c *Client) open(ctx context.Context, t Target, start uint64) (func() ([]*apiv1.PullEvent, error), error) {
	decode := newPullCodec().callOption() // responses decoded without proto's per-field work (wire.go)
	switch {
	case t.isTable():
		s, err := c.api.PullTable(ctx, &apiv1.PullTableRequest{TenantId: t.Tenant, TableId: t.TableID, Db: t.DB, Table: t.Table, StartTs: start}, decode)
		if err != nil {
			return nil, err
		}
		return func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }, nil
	case t.DB != "":
		s, err := c.api.PullDB(ctx, &apiv1.PullDBRequest{TenantId: t.Tenant, Db: t.DB, StartTs: start}, decode)
		if err != nil {
			return nil, err
		}
		return func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }, nil
	}
	s, err := c.api.PullTenant(ctx, &apiv1.PullTenantRequest{TenantId: t.Tenant, StartTs: start}, decode)
	if err != nil {
		return nil, err
	}
	return func() ([]*apiv1.PullEvent, error) { r, err := s.Recv(); return r.GetEvents(), err }, nil
}
