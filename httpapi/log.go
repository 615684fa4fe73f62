package httpapi

import (
	"net/http"
	"strconv"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// eventProof is the proof that GET /audit_logs/events/{id} adds to an
// event (SPEC §6): its inclusion in the latest checkpoint, and that
// checkpoint. It is null while the event is newer than every checkpoint
// (for about a second after it was accepted).
type eventProof struct {
	TreeSize   int64    `json:"tree_size"`
	Hashes     [][]byte `json:"hashes"`
	Checkpoint string   `json:"checkpoint"`
}

// purgedEvent is how an event whose contents retention removed reads
// (SPEC §6), with its leaf hash, so that its proof can still be checked.
type purgedEvent struct {
	ID       string      `json:"id"`
	Index    int64       `json:"index"`
	Purged   bool        `json:"purged"`
	LeafHash []byte      `json:"leaf_hash"`
	Proof    *eventProof `json:"proof"`
	// Evidence is what shows its purge was Trail's (SPEC §6).
	Evidence *tlog.PurgeEvidence `json:"purge_evidence,omitempty"`
}

type eventWithProof struct {
	*trail.Event
	Proof *eventProof `json:"proof"`
}

// logParams reads the organization and the named non-negative integer
// parameters of a proof or checkpoint request; a missing optional one is 0.
func (s *Server) logParams(r *http.Request, key *trail.APIKey, required []string, optional ...string) (string, map[string]int64, error) {
	q := r.URL.Query()
	known := map[string]bool{"organization_id": true}
	for _, n := range append(append([]string{}, required...), optional...) {
		known[n] = true
	}
	for name, vals := range q {
		if !known[name] {
			return "", nil, badParam(name, "unknown parameter")
		}
		if len(vals) > 1 {
			return "", nil, badParam(name, "given more than once")
		}
	}
	orgID := q.Get("organization_id")
	if orgID == "" {
		if key.OrganizationID == "" {
			return "", nil, badParam("organization_id", "required")
		}
		orgID = key.OrganizationID
	}
	if _, err := s.org(r.Context(), key, orgID); err != nil {
		return "", nil, err
	}
	vals := map[string]int64{}
	for i, name := range append(append([]string{}, required...), optional...) {
		v := q.Get(name)
		if v == "" {
			if i < len(required) {
				return "", nil, badParam(name, "required")
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return "", nil, badParam(name, "must be a non-negative integer")
		}
		vals[name] = n
	}
	return orgID, vals, nil
}

// handleCheckpoint serves an organization's latest signed checkpoint, or
// the one of tree_size, as text/plain (SPEC §6).
func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	orgID, p, err := s.logParams(r, key, nil, "tree_size")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var cp *trail.Checkpoint
	if size, ok := p["tree_size"]; ok {
		cp, err = s.Proofs.FindCheckpoint(r.Context(), orgID, size)
	} else {
		cp, err = s.Proofs.LatestCheckpoint(r.Context(), orgID)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(cp.Note))
}

func (s *Server) handleInclusionProof(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	orgID, p, err := s.logParams(r, key, []string{"index"}, "tree_size")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pr, err := s.Proofs.InclusionProof(r.Context(), orgID, p["index"], p["tree_size"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}

func (s *Server) handleConsistencyProof(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	orgID, p, err := s.logParams(r, key, []string{"first"}, "second")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pr, err := s.Proofs.ConsistencyProof(r.Context(), orgID, p["first"], p["second"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pr)
}

// handleLogKey serves the checkpoints' verifier key as text/plain, ready
// for `trail verify --key`.
func (s *Server) handleLogKey(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	for name := range r.URL.Query() {
		s.writeError(w, r, badParam(name, "unknown parameter"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s.Proofs.VerifierKey() + "\n"))
}

// proveEvent returns the event's inclusion proof in the latest checkpoint,
// or nil while no checkpoint covers it yet.
func (s *Server) proveEvent(r *http.Request, ev *trail.Event) (*eventProof, error) {
	cp, pr, err := s.Proofs.LatestInclusionProof(r.Context(), ev.OrganizationID, ev.Index)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if pr == nil {
		return nil, nil
	}
	return &eventProof{TreeSize: pr.TreeSize, Hashes: pr.Hashes, Checkpoint: cp.Note}, nil
}
