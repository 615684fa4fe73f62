package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/trail-audit/trail"
)

// openAPI is the OpenAPI 3.1 description of every route; a test fails when
// it and the route table disagree.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request, _ *trail.APIKey) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
