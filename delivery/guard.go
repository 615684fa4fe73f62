package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// RequestTimeout bounds one request to a destination.
const RequestTimeout = 30 * time.Second

// privateRanges are the networks a destination may not be on without
// AllowPrivate: loopback, private, link-local (cloud metadata), CGNAT,
// unique-local, and the unspecified and multicast addresses.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"), netip.MustParsePrefix("::/128"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("64:ff9b::/96"),
}

// IsPrivate reports whether addr is on a private, loopback, link-local or
// otherwise internal network.
func IsPrivate(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range privateRanges {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckHost refuses a destination host that names a private address
// outright: an IP literal on a private network, or localhost. Names that
// resolve to private addresses are refused when dialled (the resolution
// may change between this check and a delivery).
func CheckHost(host string, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%s is a loopback address: destinations on private or loopback networks need --allow-private-destinations", host)
	}
	if addr, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil && IsPrivate(addr) {
		return fmt.Errorf("%s is a private or loopback address: destinations on private or loopback networks need --allow-private-destinations", host)
	}
	return nil
}

// ClientOptions configure the HTTP client of deliveries.
type ClientOptions struct {
	// AllowPrivate lets deliveries reach private and loopback addresses.
	AllowPrivate bool
	// RootCAs, when set, are the certificate authorities trusted besides
	// the system's (an internal CA, a test receiver).
	RootCAs *x509.CertPool
}

// NewClient returns the HTTP client deliveries use: it refuses to connect
// to private addresses (unless allowed) whatever a name resolves to,
// follows no redirects and times out.
func NewClient(o ClientOptions) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		dialer.ControlContext = func(_ context.Context, network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("destination address %s: %w", address, err)
			}
			if IsPrivate(ap.Addr()) {
				return fmt.Errorf("destination address %s is private or loopback: refused without --allow-private-destinations", ap.Addr())
			}
			return nil
		}
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.RootCAs != nil {
		tlsConfig.RootCAs = o.RootCAs
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the address check
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: RequestTimeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   RequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// SystemRootsWith returns the system's certificate pool with the PEM
// certificates added.
func SystemRootsWith(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return pool, nil
}
