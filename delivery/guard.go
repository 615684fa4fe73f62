package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RequestTimeout bounds one request to a destination.
const RequestTimeout = 30 * time.Second

// privateRanges are the networks a destination may not be on without
// AllowPrivate: loopback, private, link-local (cloud metadata, IPv4 and
// IPv6), CGNAT, unique-local (AWS's IPv6 metadata fd00:ec2::254), the
// unspecified, reserved and multicast addresses, and the IPv6 forms that
// carry an IPv4 address a gateway or the kernel may turn back into IPv4
// (IPv4-compatible ::/96, NAT64).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/3"), netip.MustParsePrefix("::/96"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("ff00::/8"), netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48"),
}

// IsPrivate reports whether addr is on a private, loopback, link-local or
// otherwise internal network. The zone of an IPv6 address (fe80::1%eth0,
// ::1%lo) is dropped and an IPv4-mapped address (::ffff:127.0.0.1) is
// read as its IPv4 address before the ranges are checked: a prefix
// contains no zoned address, so a zone would otherwise pass every check.
// An invalid address is private (refused).
func IsPrivate(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	addr = addr.WithZone("").Unmap()
	for _, p := range privateRanges {
		if p.Contains(addr) {
			return true
		}
	}
	// 6to4 (2002:AABB:CCDD::/48) carries an IPv4 address too.
	if addr.Is6() {
		if b := addr.As16(); b[0] == 0x20 && b[1] == 0x02 {
			return IsPrivate(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	return false
}

// CheckHost refuses a destination host that names a private address
// outright: an IP literal on a private network (with or without an IPv6
// zone, IPv4-mapped, or an IPv4 address in the decimal, octal or hex
// forms some resolvers accept, such as 2130706433 or 0x7f.1), or
// localhost. Names that resolve to private addresses are refused when
// dialled (the resolution may change between this check and a delivery).
func CheckHost(host string, allowPrivate bool) error {
	if allowPrivate {
		return nil
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%s is a loopback address: destinations on private or loopback networks need --allow-private-destinations", host)
	}
	addr, err := netip.ParseAddr(strings.Trim(h, "[]"))
	if err != nil {
		var ok bool
		if addr, ok = parseLooseIPv4(h); !ok {
			return nil // a name: checked when dialled
		}
	}
	if IsPrivate(addr) {
		return fmt.Errorf("%s is a private or loopback address: destinations on private or loopback networks need --allow-private-destinations", host)
	}
	return nil
}

// parseLooseIPv4 parses an IPv4 address as inet_aton(3) does, which
// getaddrinfo and some resolvers accept: one to four parts, each decimal,
// octal (leading 0) or hex (0x), the last filling the remaining bytes
// (2130706433, 0177.0.0.1, 0x7f.1, 127.1).
func parseLooseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			if p == "" && base == 16 {
				v = 0 // "0x" is 0 to inet_aton
			} else {
				return netip.Addr{}, false
			}
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// privateAddressError is the dialer's refusal of a private address.
type privateAddressError struct{ addr netip.Addr }

func (e *privateAddressError) Error() string {
	return fmt.Sprintf("destination address %s is private or loopback: refused without --allow-private-destinations", e.addr)
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
			// The address as dialled, which may carry a zone (even an
			// IPv4 one, from ::ffff:7f00:1%lo): dropped before the check.
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("destination address %s: %w", address, err)
			}
			if i := strings.IndexByte(host, '%'); i >= 0 {
				host = host[:i]
			}
			addr, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("destination address %s: %w", address, err)
			}
			if IsPrivate(addr) {
				return &privateAddressError{addr: addr}
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
