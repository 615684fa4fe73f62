package httpapi

import (
	"html/template"
	"net/http"
	"net/url"

	"github.com/trail-audit/trail"
)

// Saved views: an organization's owners and admins name a view of the
// audit log (its filters, dates and zone) for all of them; saving and
// deleting are recorded in the organization's log.

// uiView is a saved view in the list: its page, and whether it is the
// one on screen.
type uiView struct {
	ID, Name string
	URL      template.URL
	Current  bool
}

// viewQuery is the query a view of f is saved as: its filters, dates and
// zone, without a page or a zoom's way back.
func viewQuery(f uiFilter) string {
	v := f.values(false)
	v.Del("undo")
	return v.Encode()
}

func (s *Server) uiSaveView(w http.ResponseWriter, r *http.Request, u *uiSession) {
	// The query is read as a filter and written again, so a view holds
	// only what the page itself would put in its URL.
	q, err := url.ParseQuery(r.PostFormValue("query"))
	if err != nil {
		s.renderMessage(w, r, u, http.StatusBadRequest, "View not saved", "The view's address is not valid.")
		return
	}
	v := &trail.SavedView{OrganizationID: u.OrganizationID, Name: r.PostFormValue("name"), Query: viewQuery(parseUIFilter(q)), CreatedBy: u.User.ID}
	if err := s.Portal.SaveView(u.withCaller(r), v); err != nil {
		switch trail.ErrorCode(err) {
		case trail.EINVALID, trail.ECONFLICT:
			s.renderMessage(w, r, u, statusOf[trail.ErrorCode(err)], "View not saved", trail.ErrorMessage(err))
		default:
			s.uiFail(w, r, u, err)
		}
		return
	}
	http.Redirect(w, r, pageURL("/ui/", mustQuery(v.Query)), http.StatusSeeOther)
}

func (s *Server) uiDeleteView(w http.ResponseWriter, r *http.Request, u *uiSession) {
	if err := s.Portal.DeleteView(u.withCaller(r), u.OrganizationID, r.PathValue("id")); err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	redirectBack(w, r)
}

// mustQuery reads a query that Trail wrote itself.
func mustQuery(q string) url.Values {
	v, _ := url.ParseQuery(q)
	return v
}
