package etcdx

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tistream/tistream/libs/tlsx"
)

// EmbeddedConfig configures an in-process etcd server (one member).
type EmbeddedConfig struct {
	Dir        string // data directory
	ClientAddr string // host:port for clients, e.g. 127.0.0.1:2379 (port 0 = pick one)
	PeerAddr   string // host:port for the (single-member) peer URL (port 0 = pick one)
	Name       string
	// TLS, when set, serves clients over TLS with this certificate and
	// requires client certificates signed by its CA (https:// endpoint).
	TLS *tlsx.Files
}

// Embedded is a running in-process etcd.
type Embedded struct {
	etcd     *embed.Etcd
	Endpoint string // http://host:port
}

// StartEmbedded starts etcd and waits until it serves (at most 60 s).
// A port picked for it (port 0) is free when picked but may be taken
// before etcd binds it (by another process doing the same): it then
// tries again with new ports, a few times.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	picked := portZero(c.ClientAddr) || portZero(c.PeerAddr)
	for attempt := 1; ; attempt++ {
		e, err := startEmbedded(c)
		if err == nil || !picked || attempt == bindAttempts || !isAddrInUse(err) {
			return e, err
		}
	}
}

// bindAttempts bounds the tries of StartEmbedded on picked ports.
const bindAttempts = 5

func portZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return addr == "" || (err == nil && port == "0")
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func startEmbedded(c EmbeddedConfig) (*Embedded, error) {
	if c.Dir == "" {
		return nil, fmt.Errorf("embedded etcd: a data directory is required")
	}
	if c.Name == "" {
		c.Name = "tistream"
	}
	client, err := resolveAddr(c.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client address: %w", err)
	}
	peer, err := resolveAddr(c.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer address: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.Dir
	cu := url.URL{Scheme: "http", Host: client}
	if c.TLS != nil {
		cu.Scheme = "https"
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
			TrustedCAFile: c.TLS.CAFile, ClientCertAuth: true}
	}
	pu := url.URL{Scheme: "http", Host: peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.LogLevel = "error"
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "1h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not ready after 60 s")
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return &Embedded{etcd: e, Endpoint: cu.String()}, nil
}

// Close stops the server.
func (e *Embedded) Close() { e.etcd.Close() }

// resolveAddr picks a free port when the address has port 0.
func resolveAddr(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
