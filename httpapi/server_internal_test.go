package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStatusWriter_Unwrap: handlers behind the status writer can move
// their write deadline (an export download longer than WriteTimeout).
func TestStatusWriter_Unwrap(t *testing.T) {
	var err error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		err = http.NewResponseController(&recorder{statusWriter: *sw}).SetWriteDeadline(time.Now().Add(time.Minute))
		sw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	resp, gerr := http.Get(srv.URL)
	if gerr != nil {
		t.Fatal(gerr)
	}
	resp.Body.Close()
	if err != nil {
		t.Fatalf("SetWriteDeadline through the status writer: %v", err)
	}
}
