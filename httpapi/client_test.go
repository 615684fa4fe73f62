package httpapi_test

import (
	"testing"

	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/storetest"
)

// TestClient_Conformance runs the storage conformance suite through the
// HTTP client and server: the client implements the same services.
func TestClient_Conformance(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		storetest.Run(t, func(t *testing.T) storetest.Services {
			ts := newTestServer(t)
			c := httpapi.NewClient(ts.URL(), adminSecret)
			return storetest.Services{Events: c.Events(), Organizations: c.Organizations(), Schemas: c.Schemas(), APIKeys: c.APIKeys()}
		})
	})
}
