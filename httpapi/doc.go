// Package httpapi serves Trail's HTTP API (WorkOS-compatible where WorkOS
// has the endpoint) and provides a Client that implements the root service
// interfaces over that API.
//
//	s := httpapi.NewServer()
//	s.Addr = "127.0.0.1:8080"
//	s.Events, s.Organizations, s.Schemas, s.APIKeys = events, orgs, schemas, keys
//	if err := s.Open(); err != nil { ... }
//	defer s.Close()
//
//	c := httpapi.NewClient(s.URL(), "sk_…")
//	res, err := c.Events().AppendEvents(ctx, "org_…", events)
package httpapi
