package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Messages of the delivery errors a tenant sees, in a stream's last_error
// and a test's result. They name the kind of failure only: a Go error
// would show the addresses of Trail's network (its resolver's, a private
// address a name resolves to) and let a tenant probe it.
const (
	MsgDNS          = "the destination's host name could not be resolved"
	MsgRefused      = "the destination refused the connection"
	MsgReset        = "the destination reset or closed the connection"
	MsgUnreachable  = "the destination's network could not be reached"
	MsgTimeout      = "the destination did not answer in time"
	MsgTLSUntrusted = "TLS failure: the destination's certificate is not trusted"
	MsgTLSHostname  = "TLS failure: the destination's certificate is not valid for its host name"
	MsgTLSInvalid   = "TLS failure: the destination's certificate is not valid (expired, not yet valid or not for a server)"
	MsgTLSHandshake = "TLS failure: the handshake with the destination failed"
	MsgNotHTTP      = "the destination's answer is not HTTP"
	MsgPrivate      = "the destination's address is private or loopback: refused without --allow-private-destinations"
	MsgCanceled     = "the delivery was cancelled"
	MsgUnknown      = "the delivery failed (the server's log has the details)"
)

// maxSnippetBytes is the most of a receiver's answer an error message
// quotes.
const maxSnippetBytes = 200

// Classify returns the message a tenant may see for a delivery error: a
// *Failure's own message (already classified), or the kind of a transport
// error (DNS, refused, reset, unreachable, timeout, TLS, private
// address), never its text. The full error belongs in the server's log.
func Classify(err error) string {
	if err == nil {
		return ""
	}
	var f *Failure
	if errors.As(err, &f) {
		return f.Message
	}
	var pe *privateAddressError
	if errors.As(err, &pe) {
		return MsgPrivate
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return MsgDNS
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknownCA):
		return MsgTLSUntrusted
	case errors.As(err, &hostname):
		return MsgTLSHostname
	case errors.As(err, &invalid):
		return MsgTLSInvalid
	case errors.As(err, &verify), errors.As(err, &record), errors.As(err, &alert):
		return MsgTLSHandshake
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return MsgTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return MsgRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return MsgReset
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return MsgUnreachable
	case errors.Is(err, context.Canceled):
		return MsgCanceled
	}
	// Errors without a type of their own: crypto/tls's are mostly plain
	// strings, and net/http's transport errors are unexported.
	switch text := err.Error(); {
	case strings.Contains(text, "tls: "), strings.Contains(text, "server gave HTTP response to HTTPS client"):
		return MsgTLSHandshake
	case strings.Contains(text, "server closed idle connection"), strings.Contains(text, "connection reset"):
		return MsgReset
	case strings.Contains(text, "malformed HTTP"):
		return MsgNotHTTP
	}
	return MsgUnknown
}

// snippet is the start of a receiver's answer for an error message: one
// line without control or format characters, at most maxSnippetBytes
// bytes (cut on a character boundary, marked by an ellipsis).
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxSnippetBytes {
		cut := maxSnippetBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
