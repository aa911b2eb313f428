package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/state"
)

// TestFileRouteOnlyForThisOrigin: /files/… needs only the session's
// cookie (an img's or an iframe's request carries no token), so it
// serves only requests the browser marks as from this origin: a page of
// another origin on the same host (another 127.0.0.1 port: same-site,
// so the cookie goes along) is refused before anything is looked up.
func TestFileRouteOnlyForThisOrigin(t *testing.T) {
	s, url, p := newUI(t)
	n, err := s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := n.Resolve(context.Background(), p)
	res, err := n.Act(context.Background(), pid, &state.TaskCreate{Title: "Memo"}, app.DoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	hdr := loginAs(t, s, url)
	cookie := map[string]string{"Cookie": hdr["Cookie"]}
	path := url + "/files/" + p + "/" + res.Event.ID().String() + "/" + strings.Repeat("ab", 32)
	for site, want := range map[string]int{"same-site": http.StatusForbidden, "cross-site": http.StatusForbidden, "same-origin": http.StatusBadGateway, "": http.StatusBadGateway} {
		h := map[string]string{"Cookie": cookie["Cookie"]}
		if site != "" {
			h["Sec-Fetch-Site"] = site
		}
		resp, body := raw(t, "GET", path, h, "")
		if resp.StatusCode != want {
			t.Errorf("Sec-Fetch-Site %q: %d %s, want %d", site, resp.StatusCode, body, want)
		}
		if want == http.StatusBadGateway && !strings.Contains(string(body), "no file") {
			t.Errorf("Sec-Fetch-Site %q: %s", site, body)
		}
	}
	if resp, _ := raw(t, "GET", path, nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a session: %d", resp.StatusCode)
	}
}
