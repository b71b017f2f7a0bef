// Package grpcx builds TiStream's gRPC servers and clients the same way
// everywhere: one interceptor chain (panic recovery, Prometheus metrics,
// structured logging of failed calls), the standard health service, keepalive
// settings, and message limits sized for store-file batches.
package grpcx

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// MaxMessage bounds one gRPC message: a store file's batch for one sorter
// can be tens of MiB during a large transaction.
const MaxMessage = 128 << 20

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
	lis    net.Listener
	log    *slog.Logger
}

// ServerOptions are a server's settings beyond its address: what the
// service kernel (libs/svc) sets for every service alike.
type ServerOptions struct {
	// MaxRecvBytes bounds one received message (0 = MaxMessage).
	MaxRecvBytes int
	// Unary and Stream interceptors run after recovery, metrics and
	// logging (authentication, limits).
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// Creds are the transport credentials (nil = plaintext).
	Creds credentials.TransportCredentials
	// MaxConcurrentStreams bounds the streams of one connection (0 = gRPC's default).
	MaxConcurrentStreams uint32
}

// NewServer listens on addr and prepares a server; register services, then Serve.
func NewServer(addr string, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	return NewServerWith(addr, log, reg, ServerOptions{})
}

// NewServerWith is NewServer with options.
func NewServerWith(addr string, log *slog.Logger, reg prometheus.Registerer, o ServerOptions) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	if reg != nil {
		if err := reg.Register(metrics); err != nil {
			lis.Close()
			return nil, fmt.Errorf("register gRPC metrics: %w", err)
		}
	}
	recoverOpt := recovery.WithRecoveryHandler(func(p any) error {
		log.Error("panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(func(c codes.Code) logging.Level {
		switch c {
		case codes.OK, codes.Canceled, codes.NotFound, codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition, codes.Unavailable:
			return logging.LevelDebug
		}
		return logging.LevelWarn
	})}
	maxRecv := o.MaxRecvBytes
	if maxRecv <= 0 {
		maxRecv = MaxMessage
	}
	unary := append([]grpc.UnaryServerInterceptor{recovery.UnaryServerInterceptor(recoverOpt), metrics.UnaryServerInterceptor(),
		logging.UnaryServerInterceptor(slogLogger(log), logOpts...)}, o.Unary...)
	stream := append([]grpc.StreamServerInterceptor{recovery.StreamServerInterceptor(recoverOpt), metrics.StreamServerInterceptor(),
		logging.StreamServerInterceptor(slogLogger(log), logOpts...)}, o.Stream...)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecv), grpc.MaxSendMsgSize(MaxMessage),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...),
		grpc.ForceServerCodecV2(codec), // protobuf, and messages that read their own bytes (codec.go)
	}
	if o.Creds != nil {
		opts = append(opts, grpc.Creds(o.Creds))
	}
	if o.MaxConcurrentStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(o.MaxConcurrentStreams))
	}
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	return &Server{Server: s, Health: h, lis: lis, log: log}, nil
}

// Addr is the address the server listens on (with the port picked for :0).
func (s *Server) Addr() string { return s.lis.Addr().String() }

// SetServing sets the health status of one service name ("" = the server).
func (s *Server) SetServing(name string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus(name, st)
}

// Close stops a server that may never have served, closing its listener.
func (s *Server) Close() {
	s.Server.Stop()
	_ = s.lis.Close() // Stop closes only the listeners Serve was given
}

// Serve serves until Stop; run it in a goroutine.
func (s *Server) Serve() error { return s.Server.Serve(s.lis) }

// Shutdown marks every service NOT_SERVING, then stops gracefully, forcing
// the stop when ctx ends first.
func (s *Server) Shutdown(ctx context.Context) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.Server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Server.Stop()
		<-done
	}
}

func slogLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// Dial connects to a TiStream service with the caller's transport
// credentials (svc.ClientCredentials: TLS with its certificate); nil means
// plaintext (an --insecure fleet, tests). Extra options (per-RPC
// credentials such as a bearer token) are added last.
func Dial(addr string, creds credentials.TransportCredentials, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}
