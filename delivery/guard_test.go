package delivery_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/trail-audit/trail/delivery"
)

// TestIsPrivate: every form of a loopback, private, link-local, mapped or
// metadata address is private, with or without an IPv6 zone; public
// addresses are not.
func TestIsPrivate(t *testing.T) {
	t.Parallel()
	private := []string{
		"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "192.168.0.10", "100.64.0.1", "0.0.0.0", "0.1.2.3",
		"169.254.169.254", "224.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.170",
		"::1", "::1%lo", "::1%1", "::", "::%eth0",
		"fe80::1", "fe80::1%eth0", "fe80::1%2", "fec0::1",
		"fd00:ec2::254", "fd00:ec2::254%eth0", "fc00::1", "fd12:3456::1%eth0",
		"ff02::1", "ff02::1%eth0",
		"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:7f00:1%lo", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:0.0.0.0",
		"::127.0.0.1", "::7f00:1", "::169.254.169.254", "::a00:1%eth0",
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
		"2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:a00:1::%eth0",
	}
	for _, s := range private {
		if !delivery.IsPrivate(netip.MustParseAddr(s)) {
			t.Errorf("%s: not private", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2001:4860:4860::8888%eth0", "::ffff:8.8.8.8", "2002:808:808::1"} {
		if delivery.IsPrivate(netip.MustParseAddr(s)) {
			t.Errorf("%s: private", s)
		}
	}
	if !delivery.IsPrivate(netip.Addr{}) {
		t.Error("the invalid address is not private")
	}
}

// TestCheckHost_Forms: a host as a stream's URL gives it (url.Hostname:
// brackets gone, a zone unescaped) is refused in every form that names a
// private address, and allowed with private destinations allowed.
func TestCheckHost_Forms(t *testing.T) {
	t.Parallel()
	refused := []string{
		"127.0.0.1", "127.0.0.1.", "::1", "[::1]", "::1%lo", "[::1%lo]", "::1%25lo", "0:0:0:0:0:0:0:1%lo",
		"localhost", "localhost.", "LOCALHOST", "api.localhost", "api.localhost.",
		"0.0.0.0", "::", "[::]", "::%lo",
		"::ffff:127.0.0.1", "[::ffff:127.0.0.1]", "::ffff:7f00:1", "::ffff:7f00:1%lo", "::127.0.0.1", "64:ff9b::7f00:1",
		"2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "0", "017700000001", "0xa9.0xfe.0xa9.0xfe",
		"169.254.169.254", "fe80::1%eth0", "fe80::1", "fd00:ec2::254", "fd00:ec2::254%eth0",
		"10.1.2.3", "192.168.0.10", "172.31.255.255", "100.64.0.1", "fd12::1",
	}
	for _, h := range refused {
		if delivery.CheckHost(h, false) == nil {
			t.Errorf("%s allowed", h)
		}
		if err := delivery.CheckHost(h, true); err != nil {
			t.Errorf("%s refused with private destinations allowed: %v", h, err)
		}
	}
	for _, h := range []string{"http-intake.logs.datadoghq.com", "siem.example.com.", "8.8.8.8", "134744072", "2001:4860:4860::8888", "2001:4860:4860::8888%eth0", "::ffff:8.8.8.8"} {
		if err := delivery.CheckHost(h, false); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

// TestNewClient_ZonedLoopback: the delivery client refuses to connect to a
// loopback address written with a zone or as an IPv4-mapped address,
// while the same server is reachable when private destinations are allowed
// (so the refusal is the guard's, not a network failure).
func TestNewClient_ZonedLoopback(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	srv4 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv4.Close()
	port4 := srv4.Listener.Addr().(*net.TCPAddr).Port
	urls := []string{
		"http://[::1%25lo]:" + strconv.Itoa(port) + "/",
		"http://[::1%251]:" + strconv.Itoa(port) + "/",
		"http://[::1]:" + strconv.Itoa(port) + "/",
		"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port4) + "/",
		"http://[::ffff:7f00:1%25lo]:" + strconv.Itoa(port4) + "/",
		"http://127.0.0.1:" + strconv.Itoa(port4) + "/",
	}
	guarded := delivery.NewClient(delivery.ClientOptions{})
	open := delivery.NewClient(delivery.ClientOptions{AllowPrivate: true})
	for _, u := range urls {
		resp, err := guarded.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: connected", u)
		} else if !strings.Contains(err.Error(), "private or loopback") {
			t.Errorf("%s: %v, want a refusal of a private address", u, err)
		}
		if strings.Contains(u, "%25lo") && !strings.Contains(u, "::ffff") {
			// The zoned address reaches the server when allowed.
			resp, err := open.Get(u)
			if err != nil {
				t.Errorf("%s with private destinations allowed: %v", u, err)
			} else {
				resp.Body.Close()
			}
		}
	}
}
