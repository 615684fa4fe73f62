package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trail-audit/trail"
)

// Client talks to a Trail server and implements the root service
// interfaces over its API. It is safe for concurrent use.
type Client struct {
	URL        string // base URL, e.g. http://127.0.0.1:8080
	APIKey     string
	HTTPClient *http.Client
	UserAgent  string
}

// NewClient returns a Client for the server at baseURL.
func NewClient(baseURL, apiKey string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, HTTPClient: http.DefaultClient, UserAgent: "trail-go-client"}
}

// Events returns the client's trail.EventService.
func (c *Client) Events() *EventService { return &EventService{c} }

// Organizations returns the client's trail.OrganizationService.
func (c *Client) Organizations() *OrganizationService { return &OrganizationService{c} }

// Schemas returns the client's trail.SchemaService.
func (c *Client) Schemas() *SchemaService { return &SchemaService{c} }

// APIKeys returns the client's trail.APIKeyService.
func (c *Client) APIKeys() *APIKeyService { return &APIKeyService{c} }

// do sends a request and decodes a JSON answer into out. Error answers
// become *trail.Error with the server's code, message and problems; a 422
// (WorkOS's malformed request) becomes EINVALID.
func (c *Client) do(ctx context.Context, method, path string, secret string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return err
	}
	if secret == "" {
		secret = c.APIKey
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("User-Agent", c.UserAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body struct {
		Message string          `json:"message"`
		Code    string          `json:"code"`
		Errors  json.RawMessage `json:"errors"`
	}
	json.Unmarshal(b, &body)
	e := &trail.Error{Code: body.Code, Message: body.Message}
	if e.Message == "" {
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	switch resp.StatusCode {
	case http.StatusUnprocessableEntity:
		e.Code = trail.EINVALID
		var fes []fieldError
		json.Unmarshal(body.Errors, &fes)
		for _, fe := range fes {
			e.Problems = append(e.Problems, trail.Problem{Path: fe.Field, Message: fe.Code})
		}
		return e
	}
	json.Unmarshal(body.Errors, &e.Problems)
	if e.Code == "" {
		for code, status := range statusOf {
			if status == resp.StatusCode && code != trail.EINVALIDEVENT && code != trail.EINVALIDSCHEMA && code != trail.EINVALIDRANGE && code != trail.ESCHEMATOOCOMPLEX {
				e.Code = code
			}
		}
	}
	if e.Code == "" {
		e.Code = trail.EINTERNAL
	}
	return e
}

func listQueryValues(f trail.ListFilter, cursor func(string) string) url.Values {
	q := url.Values{}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Ascending {
		q.Set("order", "asc")
	}
	if f.Before != "" {
		q.Set("before", cursor(f.Before))
	}
	if f.After != "" {
		q.Set("after", cursor(f.After))
	}
	return q
}

func keyCursor(k string) string { return *encodeKeyCursor(k) }

type listResponse[T any] struct {
	Data         []T          `json:"data"`
	ListMetadata listMetadata `json:"list_metadata"`
}

func (l *listResponse[T]) more(f trail.ListFilter) bool {
	if f.Before != "" {
		return l.ListMetadata.Before != nil
	}
	return l.ListMetadata.After != nil
}

// EventService implements trail.EventService over HTTP.
type EventService struct{ c *Client }

var _ trail.EventService = (*EventService)(nil)

// AppendEvents posts the events in batches of up to 1000. Per-event
// rejections are in the results; a batch-level error is returned.
func (s *EventService) AppendEvents(ctx context.Context, orgID string, inputs []*trail.EventInput) ([]trail.AppendResult, error) {
	type item struct {
		*trail.EventInput
		IdempotencyKey string `json:"idempotency_key,omitempty"`
	}
	results := make([]trail.AppendResult, 0, len(inputs))
	for start := 0; start < len(inputs); start += trail.MaxBatchEvents {
		chunk := inputs[start:min(len(inputs), start+trail.MaxBatchEvents)]
		items := make([]item, len(chunk))
		for i, in := range chunk {
			items[i] = item{in, in.IdempotencyKey}
		}
		var out listResponse[struct {
			ID        string     `json:"id"`
			Index     int64      `json:"index"`
			Duplicate bool       `json:"duplicate"`
			Error     *errorBody `json:"error"`
		}]
		if err := s.c.do(ctx, "POST", "/audit_logs/events/batch", "", map[string]any{"organization_id": orgID, "events": items}, &out); err != nil {
			return nil, err
		}
		if len(out.Data) != len(chunk) {
			return nil, fmt.Errorf("append events: %d results for %d events", len(out.Data), len(chunk))
		}
		for _, d := range out.Data {
			r := trail.AppendResult{ID: d.ID, Index: d.Index, Duplicate: d.Duplicate}
			if d.Error != nil {
				e := &trail.Error{Code: d.Error.Code, Message: d.Error.Message}
				if b, err := json.Marshal(d.Error.Errors); err == nil {
					json.Unmarshal(b, &e.Problems)
				}
				r = trail.AppendResult{Err: e}
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// FindEventByID gets one event.
func (s *EventService) FindEventByID(ctx context.Context, orgID, id string) (*trail.Event, error) {
	q := url.Values{}
	if orgID != "" {
		q.Set("organization_id", orgID)
	}
	var ev trail.Event
	if err := s.c.do(ctx, "GET", "/audit_logs/events/"+url.PathEscape(id)+"?"+q.Encode(), "", nil, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// FindEvents queries one page.
func (s *EventService) FindEvents(ctx context.Context, f trail.EventFilter) (*trail.EventPage, error) {
	q := url.Values{}
	q.Set("organization_id", f.OrganizationID)
	set := func(name string, vals []string) {
		for _, v := range vals {
			q.Add(name+"[]", v) // name[]: values may contain commas
		}
	}
	set("actions", f.Actions)
	set("actor_ids", f.ActorIDs)
	set("actor_names", f.ActorNames)
	set("actor_types", f.ActorTypes)
	set("target_ids", f.TargetIDs)
	set("targets", f.TargetTypes)
	if f.RangeStart != nil {
		q.Set("range_start", f.RangeStart.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	if f.RangeEnd != nil {
		q.Set("range_end", f.RangeEnd.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	if f.Query != "" {
		q.Set("q", f.Query)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	// One event more than the page tells exactly whether more follow.
	ask := min(limit+1, 1000)
	q.Set("limit", strconv.Itoa(ask))
	if f.Ascending {
		q.Set("order", "asc")
	}
	if f.Before != nil {
		q.Set("before", EncodeEventCursor(*f.Before))
	}
	if f.After != nil {
		q.Set("after", EncodeEventCursor(*f.After))
	}
	var out listResponse[*trail.Event]
	if err := s.c.do(ctx, "GET", "/audit_logs/events?"+q.Encode(), "", nil, &out); err != nil {
		return nil, err
	}
	page := &trail.EventPage{Events: out.Data}
	switch {
	case ask > limit:
		if len(page.Events) > limit {
			if f.Before != nil { // a before page ends with the events nearest the cursor
				page.Events = page.Events[len(page.Events)-limit:]
			} else {
				page.Events = page.Events[:limit]
			}
			page.HasMore = true
		}
	case f.Before != nil:
		page.HasMore = out.ListMetadata.Before != nil
	default:
		// limit 1000: the server keeps after on an ascending last page for
		// tailing, so only a full page may have more.
		page.HasMore = out.ListMetadata.After != nil && (!f.Ascending || len(out.Data) >= limit)
	}
	return page, nil
}

// OrganizationService implements trail.OrganizationService over HTTP.
type OrganizationService struct{ c *Client }

var _ trail.OrganizationService = (*OrganizationService)(nil)

// CreateOrganization creates an organization.
func (s *OrganizationService) CreateOrganization(ctx context.Context, org *trail.Organization) error {
	var out trail.Organization
	if err := s.c.do(ctx, "POST", "/organizations", "", map[string]string{"id": org.ID, "name": org.Name}, &out); err != nil {
		return err
	}
	org.ID, org.CreatedAt, org.UpdatedAt = out.ID, out.CreatedAt, out.UpdatedAt
	if org.RetentionDays == 0 {
		org.RetentionDays = trail.DefaultRetentionDays
	}
	return nil
}

// FindOrganizationByID gets one organization with its retention.
func (s *OrganizationService) FindOrganizationByID(ctx context.Context, id string) (*trail.Organization, error) {
	var org trail.Organization
	if err := s.c.do(ctx, "GET", "/organizations/"+url.PathEscape(id), "", nil, &org); err != nil {
		return nil, err
	}
	var ret retentionJSON
	if err := s.c.do(ctx, "GET", "/organizations/"+url.PathEscape(id)+"/audit_logs_retention", "", nil, &ret); err != nil {
		return nil, err
	}
	org.RetentionDays = ret.RetentionPeriodInDays
	return &org, nil
}

// FindOrganizations lists organizations; with ids, it gets each of them
// and pages locally.
func (s *OrganizationService) FindOrganizations(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, bool, error) {
	if ids == nil {
		var out listResponse[*trail.Organization]
		if err := s.c.do(ctx, "GET", "/organizations?"+listQueryValues(f, keyCursor).Encode(), "", nil, &out); err != nil {
			return nil, false, err
		}
		return out.Data, out.more(f), nil
	}
	var all []*trail.Organization
	for _, id := range ids {
		org, err := s.FindOrganizationByID(ctx, id)
		if trail.ErrorCode(err) == trail.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, false, err
		}
		all = append(all, org)
	}
	return pageLocally(all, func(o *trail.Organization) string { return o.ID }, f)
}

// pageLocally applies a ListFilter to items in memory.
func pageLocally[T any](items []T, key func(T) string, f trail.ListFilter) ([]T, bool, error) {
	less := func(a, b string) bool {
		if f.Ascending {
			return a < b
		}
		return a > b
	}
	sorted := append([]T(nil), items...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && less(key(sorted[j]), key(sorted[j-1])); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	limit := f.PageLimit()
	var out []T
	if f.Before != "" {
		for i := len(sorted) - 1; i >= 0; i-- {
			if less(key(sorted[i]), f.Before) {
				out = append([]T{sorted[i]}, out...)
				if len(out) > limit {
					return out[1:], true, nil
				}
			}
		}
		return out, false, nil
	}
	for _, it := range sorted {
		if f.After == "" || less(f.After, key(it)) {
			out = append(out, it)
			if len(out) > limit {
				return out[:limit], true, nil
			}
		}
	}
	return out, false, nil
}

// UpdateRetention sets the retention period.
func (s *OrganizationService) UpdateRetention(ctx context.Context, id string, days int) (*trail.Organization, error) {
	if err := s.c.do(ctx, "PUT", "/organizations/"+url.PathEscape(id)+"/audit_logs_retention", "", retentionJSON{days}, nil); err != nil {
		return nil, err
	}
	return s.FindOrganizationByID(ctx, id)
}

// SchemaService implements trail.SchemaService over HTTP.
type SchemaService struct{ c *Client }

var _ trail.SchemaService = (*SchemaService)(nil)

// CreateSchema creates the next version of an action's schema.
func (s *SchemaService) CreateSchema(ctx context.Context, sc *trail.Schema) error {
	body := map[string]any{"targets": sc.Targets}
	if sc.Actor != nil {
		body["actor"] = sc.Actor
	}
	if len(sc.Metadata) > 0 {
		body["metadata"] = sc.Metadata
	}
	var out schemaJSON
	if err := s.c.do(ctx, "POST", "/audit_logs/actions/"+url.PathEscape(sc.Action)+"/schemas", "", body, &out); err != nil {
		return err
	}
	sc.Version, sc.CreatedAt = out.Version, out.CreatedAt
	return nil
}

// FindSchema finds one version by listing the action's versions.
func (s *SchemaService) FindSchema(ctx context.Context, action string, version int) (*trail.Schema, error) {
	f := trail.ListFilter{Limit: 100}
	for {
		list, more, err := s.FindSchemas(ctx, action, f)
		if err != nil {
			if trail.ErrorCode(err) == trail.ENOTFOUND {
				break
			}
			return nil, err
		}
		for _, sc := range list {
			if sc.Version == version {
				return sc, nil
			}
		}
		if !more || len(list) == 0 {
			break
		}
		f.After = strconv.Itoa(list[len(list)-1].Version)
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "Schema version %d of action '%s' not found.", version, action)
}

// HasSchemas reports whether the action has a schema.
func (s *SchemaService) HasSchemas(ctx context.Context, action string) (bool, error) {
	_, _, err := s.FindSchemas(ctx, action, trail.ListFilter{Limit: 1})
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// FindSchemas lists an action's versions.
func (s *SchemaService) FindSchemas(ctx context.Context, action string, f trail.ListFilter) ([]*trail.Schema, bool, error) {
	var out listResponse[schemaJSON]
	if err := s.c.do(ctx, "GET", "/audit_logs/actions/"+url.PathEscape(action)+"/schemas?"+listQueryValues(f, keyCursor).Encode(), "", nil, &out); err != nil {
		return nil, false, err
	}
	list := make([]*trail.Schema, len(out.Data))
	for i, d := range out.Data {
		list[i] = &trail.Schema{Action: action, Version: d.Version, Targets: d.Targets, Actor: d.Actor, Metadata: d.Metadata, CreatedAt: d.CreatedAt}
	}
	return list, out.more(f), nil
}

// FindActions lists actions.
func (s *SchemaService) FindActions(ctx context.Context, f trail.ListFilter) ([]*trail.Action, bool, error) {
	var out listResponse[struct {
		Name      string     `json:"name"`
		Schema    schemaJSON `json:"schema"`
		CreatedAt string     `json:"created_at"`
		UpdatedAt string     `json:"updated_at"`
	}]
	if err := s.c.do(ctx, "GET", "/audit_logs/actions?"+listQueryValues(f, keyCursor).Encode(), "", nil, &out); err != nil {
		return nil, false, err
	}
	list := make([]*trail.Action, len(out.Data))
	for i, d := range out.Data {
		a := &trail.Action{Name: d.Name, Schema: &trail.Schema{Action: d.Name, Version: d.Schema.Version, Targets: d.Schema.Targets,
			Actor: d.Schema.Actor, Metadata: d.Schema.Metadata, CreatedAt: d.Schema.CreatedAt}}
		a.CreatedAt, _ = parseTimestamp(d.CreatedAt)
		a.UpdatedAt, _ = parseTimestamp(d.UpdatedAt)
		list[i] = a
	}
	return list, out.more(f), nil
}

// APIKeyService implements trail.APIKeyService over HTTP.
type APIKeyService struct{ c *Client }

var _ trail.APIKeyService = (*APIKeyService)(nil)

// CreateAPIKey creates a key; the returned secret is set on k.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, k *trail.APIKey) error {
	body := map[string]any{"name": k.Name, "organization_id": k.OrganizationID, "permissions": k.Permissions}
	if k.RateLimit != nil {
		body["rate_limit"] = *k.RateLimit
	}
	if k.Secret != "" {
		body["secret"] = k.Secret
	}
	var out trail.APIKey
	if err := s.c.do(ctx, "POST", "/api_keys", "", body, &out); err != nil {
		return err
	}
	*k = out
	return nil
}

// FindAPIKeyByID gets one key.
func (s *APIKeyService) FindAPIKeyByID(ctx context.Context, id string) (*trail.APIKey, error) {
	var k trail.APIKey
	if err := s.c.do(ctx, "GET", "/api_keys/"+url.PathEscape(id), "", nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// FindAPIKeys lists keys.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, bool, error) {
	q := listQueryValues(f, keyCursor)
	if orgID != "" {
		q.Set("organization_id", orgID)
	}
	var out listResponse[*trail.APIKey]
	if err := s.c.do(ctx, "GET", "/api_keys?"+q.Encode(), "", nil, &out); err != nil {
		return nil, false, err
	}
	return out.Data, out.more(f), nil
}

// RevokeAPIKey revokes a key.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, id string) error {
	return s.c.do(ctx, "DELETE", "/api_keys/"+url.PathEscape(id), "", nil, nil)
}

// Authenticate asks the server which key the secret belongs to.
func (s *APIKeyService) Authenticate(ctx context.Context, secret string) (*trail.APIKey, error) {
	if secret == "" {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "Invalid API key.")
	}
	var k trail.APIKey
	if err := s.c.do(ctx, "GET", "/api_keys/me", secret, nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateExport starts an export (POST /audit_logs/exports) with the
// request body's fields (organization_id, range_start, range_end, the
// filters, format, gzip).
func (c *Client) CreateExport(ctx context.Context, body map[string]any) (*ExportResponse, error) {
	var out ExportResponse
	if err := c.do(ctx, "POST", "/audit_logs/exports", "", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetExport returns an export's state and, once ready, a fresh link.
func (c *Client) GetExport(ctx context.Context, id string) (*ExportResponse, error) {
	var out ExportResponse
	if err := c.do(ctx, "GET", "/audit_logs/exports/"+url.PathEscape(id), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DownloadExport copies the file behind a ready export's link to w,
// calling progress with the bytes copied so far.
func (c *Client) DownloadExport(ctx context.Context, link string, w io.Writer, progress func(n int64)) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", link, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if _, err := w.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			if progress != nil {
				progress(n)
			}
		}
		if rerr == io.EOF {
			break
		} else if rerr != nil {
			return n, fmt.Errorf("download: %w", rerr)
		}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("download: %d of %d bytes received", n, resp.ContentLength)
	}
	return n, nil
}
