package httpapi

import (
	"strings"
	"testing"
)

// TestBarsSVG: the bars the page writes itself escape every string, link
// only to pages of the UI, and give each bar its place and height.
func TestBarsSVG(t *testing.T) {
	got := string(barsSVG([]uiBar{
		{X: 1, Y: 52.5, W: 8, H: 47.5, Count: 3, Label: `3 events from <b>"x"</b> & 'y'`, URL: "/ui/?from=2026-12-01T00:00&to=2026-12-02T00:00"},
		{X: 11, W: 8, Label: "0 events"},
		{X: 21, Y: 4, W: 8, H: 96, Count: 9, Label: "9 events", URL: "javascript:alert(1)"},
	}))
	for _, want := range []string{
		`<a href="/ui/?from=2026-12-01T00:00&amp;to=2026-12-02T00:00" aria-label="3 events from &lt;b&gt;&#34;x&#34;&lt;/b&gt; &amp; &#39;y&#39;" tabindex="-1">`,
		`<title>3 events from &lt;b&gt;&#34;x&#34;&lt;/b&gt; &amp; &#39;y&#39;</title><rect class="bar" x="1" y="52.5" width="8" height="47.5"></rect><rect x="1" y="0" width="8" height="100" fill="transparent"></rect></a>`,
		`<g><title>0 events</title><rect x="11" y="0" width="8" height="100" fill="transparent"></rect></g>`,
		`<g><title>9 events</title><rect x="21" y="0" width="8" height="100" fill="transparent"></rect></g>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %s\nin %s", want, got)
		}
	}
	if strings.Contains(got, "javascript") || strings.Contains(got, "<b>") {
		t.Errorf("unescaped or unsafe: %s", got)
	}
}
