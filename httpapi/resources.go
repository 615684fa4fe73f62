package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// parseListFilter reads WorkOS list parameters: limit (1–100, default 10),
// before, after and order (desc default; "normal" is desc).
func parseListFilter(q url.Values, allowed ...string) (trail.ListFilter, error) {
	f := trail.ListFilter{}
	for name := range q {
		if !slices.Contains(append([]string{"limit", "before", "after", "order"}, allowed...), name) {
			return f, badParam(name, "unknown parameter")
		}
	}
	var err error
	f.Limit, f.Ascending, err = parsePaging(q, 10, 100)
	if err != nil {
		return f, err
	}
	for name, dst := range map[string]*string{"before": &f.Before, "after": &f.After} {
		if v := q.Get(name); v != "" {
			b, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || !strings.HasPrefix(string(b), "k:") {
				return f, badParam(name, "not a cursor returned by this API")
			}
			*dst = string(b[2:])
		}
	}
	return f, nil
}

// parsePaging reads limit (1 to max, default def), order and the rule that
// before and after do not go together.
func parsePaging(q url.Values, def, max int) (limit int, asc bool, err error) {
	limit = def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, false, badParam("limit", fmt.Sprintf("must be an integer from 1 to %d", max))
		}
		limit = n
	}
	switch q.Get("order") {
	case "", "desc", "normal":
	case "asc":
		asc = true
	default:
		return 0, false, badParam("order", "must be asc or desc")
	}
	if q.Get("before") != "" && q.Get("after") != "" {
		return 0, false, badParam("before", "cannot be combined with after")
	}
	return limit, asc, nil
}

func encodeKeyCursor(k string) *string {
	s := base64.RawURLEncoding.EncodeToString([]byte("k:" + k))
	return &s
}

// listMeta computes WorkOS list_metadata for a page of keyed items.
func listMeta(f trail.ListFilter, more bool, first, last string, n int) listMetadata {
	var m listMetadata
	if n == 0 {
		return m
	}
	if f.Before != "" {
		m.After = encodeKeyCursor(last)
		if more {
			m.Before = encodeKeyCursor(first)
		}
	} else {
		if more {
			m.After = encodeKeyCursor(last)
		}
		if f.After != "" {
			m.Before = encodeKeyCursor(first)
		}
	}
	return m
}

// writeList writes a page of keyed items in WorkOS's list envelope.
func writeList[T, J any](w http.ResponseWriter, f trail.ListFilter, more bool, list []T, key func(T) string, toJSON func(T) J) {
	data := make([]J, len(list))
	for i, it := range list {
		data[i] = toJSON(it)
	}
	var meta listMetadata
	if n := len(list); n > 0 {
		meta = listMeta(f, more, key(list[0]), key(list[n-1]), n)
	}
	writeJSON(w, http.StatusOK, listEnvelope{Object: "list", Data: data, ListMetadata: meta})
}

// decodeJSON decodes a request body into v; a body that is not JSON of
// the right shape is a 422.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		field := "body"
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
			field = te.Field
		}
		return malformed(field, "invalid")
	}
	return nil
}

// --- schemas ---

type schemaJSON struct {
	Object    string               `json:"object"`
	Version   int                  `json:"version"`
	Targets   []trail.SchemaTarget `json:"targets"`
	Actor     *trail.SchemaActor   `json:"actor,omitempty"`
	Metadata  json.RawMessage      `json:"metadata,omitempty"`
	CreatedAt time.Time            `json:"created_at"`
}

func toSchemaJSON(s *trail.Schema) schemaJSON {
	return schemaJSON{Object: "audit_log_schema", Version: s.Version, Targets: s.Targets, Actor: s.Actor, Metadata: s.Metadata, CreatedAt: s.CreatedAt}
}

// SchemaChecker refuses a new schema with a *trail.Error naming its
// problems (EINVALIDSCHEMA, ESCHEMATOOCOMPLEX, EUNAVAILABLE); set by
// cmd/trail to the JSON Schema validator's Check.
type SchemaChecker func(*trail.Schema) error

func (s *Server) handleCreateSchema(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	if key.OrganizationID != "" {
		s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "Schemas are instance-wide: an organization-scoped key cannot create them."))
		return
	}
	action := r.PathValue("action")
	if !trail.ValidAction(action) {
		s.writeError(w, r, badParam("action", "must be 1 to 128 characters of letters, digits, '_', '.', ':' and '-'"))
		return
	}
	var body struct {
		Targets  []trail.SchemaTarget `json:"targets"`
		Actor    *trail.SchemaActor   `json:"actor"`
		Metadata json.RawMessage      `json:"metadata"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Targets == nil {
		s.writeError(w, r, malformed("targets", "required"))
		return
	}
	sc := &trail.Schema{Action: action, Targets: body.Targets, Actor: body.Actor, Metadata: body.Metadata}
	if s.CheckSchema != nil {
		if err := s.CheckSchema(sc); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.Schemas.CreateSchema(r.Context(), sc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.SchemaCreated != nil {
		s.SchemaCreated(action)
	}
	writeJSON(w, http.StatusCreated, toSchemaJSON(sc))
}

func (s *Server) handleListSchemas(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseListFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.Schemas.FindSchemas(r.Context(), r.PathValue("action"), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeList(w, f, more, list, func(sc *trail.Schema) string { return strconv.Itoa(sc.Version) }, toSchemaJSON)
}

func (s *Server) handleListActions(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseListFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.Schemas.FindActions(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	type actionJSON struct {
		Object    string     `json:"object"`
		Name      string     `json:"name"`
		Schema    schemaJSON `json:"schema"`
		CreatedAt time.Time  `json:"created_at"`
		UpdatedAt time.Time  `json:"updated_at"`
	}
	writeList(w, f, more, list, func(a *trail.Action) string { return a.Name }, func(a *trail.Action) actionJSON {
		return actionJSON{Object: "audit_log_action", Name: a.Name, Schema: toSchemaJSON(a.Schema), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	})
}

// --- organizations ---

type organizationJSON struct {
	Object string `json:"object"`
	*trail.Organization
}

func (s *Server) handleCreateOrganization(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	if key.OrganizationID != "" {
		s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "An organization-scoped key cannot create organizations."))
		return
	}
	var body struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !trail.ValidName(body.Name) {
		s.writeError(w, r, malformed("name", "required"))
		return
	}
	if body.ID != "" && !trail.ValidOrganizationID(body.ID) {
		s.writeError(w, r, malformed("id", "invalid"))
		return
	}
	org := &trail.Organization{ID: body.ID, Name: body.Name}
	if err := s.Organizations.CreateOrganization(r.Context(), org); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, organizationJSON{"organization", org})
}

func (s *Server) handleListOrganizations(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseListFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var ids []string
	if key.OrganizationID != "" {
		ids = []string{key.OrganizationID}
	}
	list, more, err := s.Organizations.FindOrganizations(r.Context(), ids, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeList(w, f, more, list, func(o *trail.Organization) string { return o.ID },
		func(o *trail.Organization) organizationJSON { return organizationJSON{"organization", o} })
}

// pathOrg reads the organization of the path, uncached; another tenant's
// organization is ENOTFOUND.
func (s *Server) pathOrg(r *http.Request, key *trail.APIKey) (*trail.Organization, error) {
	id := r.PathValue("id")
	if !key.CanAct(id) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id)
	}
	return s.Organizations.FindOrganizationByID(r.Context(), id)
}

func (s *Server) handleGetOrganization(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	org, err := s.pathOrg(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, organizationJSON{"organization", org})
}

type retentionJSON struct {
	RetentionPeriodInDays int `json:"retention_period_in_days"`
}

func (s *Server) handleGetRetention(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	org, err := s.pathOrg(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retentionJSON{org.RetentionDays})
}

func (s *Server) handlePutRetention(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	id := r.PathValue("id")
	if !key.CanAct(id) {
		s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id))
		return
	}
	var body struct {
		Days *int `json:"retention_period_in_days"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Days == nil {
		s.writeError(w, r, malformed("retention_period_in_days", "required"))
		return
	}
	if !trail.ValidRetention(*body.Days) {
		s.writeError(w, r, malformed("retention_period_in_days", "out_of_range"))
		return
	}
	org, err := s.Organizations.UpdateRetention(r.Context(), id, *body.Days)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.forgetOrg(id)
	writeJSON(w, http.StatusOK, retentionJSON{org.RetentionDays})
}

// --- API keys ---

type apiKeyJSON struct {
	Object string `json:"object"`
	*trail.APIKey
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	var body struct {
		Name           string             `json:"name"`
		OrganizationID string             `json:"organization_id"`
		Permissions    []trail.Permission `json:"permissions"`
		RateLimit      *int               `json:"rate_limit"`
		Secret         string             `json:"secret"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !trail.ValidName(body.Name) {
		s.writeError(w, r, malformed("name", "required"))
		return
	}
	if len(body.Permissions) == 0 {
		s.writeError(w, r, malformed("permissions", "required"))
		return
	}
	for _, p := range body.Permissions {
		if !trail.ValidPermission(p) {
			s.writeError(w, r, malformed("permissions", "invalid"))
			return
		}
	}
	if body.RateLimit != nil && *body.RateLimit < 0 {
		s.writeError(w, r, malformed("rate_limit", "invalid"))
		return
	}
	if body.Secret != "" && !trail.ValidSecret(body.Secret) {
		s.writeError(w, r, malformed("secret", "invalid"))
		return
	}
	if strings.IndexByte(body.OrganizationID, 0) >= 0 {
		s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "Organization not found."))
		return
	}
	if key.OrganizationID != "" {
		if body.OrganizationID == "" {
			body.OrganizationID = key.OrganizationID // never instance-wide
		} else if body.OrganizationID != key.OrganizationID {
			s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", body.OrganizationID))
			return
		}
	}
	for _, p := range body.Permissions {
		if !key.Can(p) {
			s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "A key cannot grant the %s permission it does not hold.", p))
			return
		}
	}
	if !key.Can(trail.PermAdmin) {
		// Nor a larger request budget than its own.
		own := s.RateLimit
		if key.RateLimit != nil {
			own = *key.RateLimit
		}
		switch {
		case own <= 0: // the caller is unlimited
		case body.RateLimit != nil && (*body.RateLimit == 0 || *body.RateLimit > own):
			s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "A key cannot grant a rate limit above its own (%d a minute).", own))
			return
		case body.RateLimit == nil && key.RateLimit != nil:
			body.RateLimit = &own // the caller's own, lower-than-default budget
		}
	}
	k := &trail.APIKey{Name: body.Name, OrganizationID: body.OrganizationID, Permissions: body.Permissions, RateLimit: body.RateLimit, Secret: body.Secret}
	if err := s.APIKeys.CreateAPIKey(r.Context(), k); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, apiKeyJSON{"api_key", k})
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseListFilter(r.URL.Query(), "organization_id")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	orgID, err := listScope(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.APIKeys.FindAPIKeys(r.Context(), orgID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeList(w, f, more, list, func(k *trail.APIKey) string { return k.ID },
		func(k *trail.APIKey) apiKeyJSON { return apiKeyJSON{"api_key", k} })
}

// listScope is the organization a list is of: the organization_id
// parameter, or the key's own organization ("" for every organization,
// for an instance-wide key). Another organization than the key's is a 404.
func listScope(r *http.Request, key *trail.APIKey) (string, error) {
	orgID := r.URL.Query().Get("organization_id")
	if key.OrganizationID != "" {
		if orgID != "" && orgID != key.OrganizationID {
			return "", trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", orgID)
		}
		orgID = key.OrganizationID
	}
	return orgID, nil
}

// scopedKey finds a key the caller may manage, or ENOTFOUND.
func (s *Server) scopedKey(r *http.Request, key *trail.APIKey) (*trail.APIKey, error) {
	id := r.PathValue("id")
	k, err := s.APIKeys.FindAPIKeyByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if key.OrganizationID != "" && k.OrganizationID != key.OrganizationID {
		return nil, trail.Errorf(trail.ENOTFOUND, "API key not found: '%s'.", id)
	}
	return k, nil
}

func (s *Server) handleGetAPIKey(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	k, err := s.scopedKey(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiKeyJSON{"api_key", k})
}

// handleGetOwnAPIKey returns the calling key; it needs no permission.
func (s *Server) handleGetOwnAPIKey(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	writeJSON(w, http.StatusOK, apiKeyJSON{"api_key", key})
}

func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	k, err := s.scopedKey(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, p := range k.Permissions {
		if !key.Can(p) {
			s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "A key cannot revoke a key holding the %s permission it does not hold.", p))
			return
		}
	}
	if err := s.APIKeys.RevokeAPIKey(r.Context(), k.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.forgetKeys()
	k, err = s.APIKeys.FindAPIKeyByID(r.Context(), k.ID)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("reread revoked key: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apiKeyJSON{"api_key", k})
}
