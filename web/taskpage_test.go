package web

import (
	"fmt"
	"strings"
	"testing"
)

// TestUITaskPages: the tasks API pages. A board page (?per_status=2)
// holds at most two tasks of each status, the count of every status and
// the titles of the shown tasks' parents; a list page (?status=&limit=
// &after=) walks one status in order to its end; without paging the list
// is every task, as before; a page size out of bounds says the bounds.
func TestUITaskPages(t *testing.T) {
	s, url, p := newUI(t)
	tok := loginAs(t, s, url)
	var ids []string
	for i := range 5 {
		_, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks", tok, map[string]any{"title": fmt.Sprintf("Task %d", i)})
		ids = append(ids, res["task"].(string))
	}
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+ids[4]+"/status", tok, map[string]any{"status": "working-on"}); code != 200 {
		t.Fatalf("status: %d %v", code, res)
	}
	if code, res, _ := call(t, "POST", url+"/api/p/"+p+"/tasks/"+ids[4]+"/move", tok, map[string]any{"parent": ids[0]}); code != 200 {
		t.Fatalf("move: %d %v", code, res)
	}
	code, _, all := call(t, "GET", url+"/api/p/"+p+"/tasks", tok, nil)
	if code != 200 || len(all) != 5 {
		t.Fatalf("the whole list: %d, %d tasks", code, len(all))
	}
	code, board, _ := call(t, "GET", url+"/api/p/"+p+"/tasks?per_status=2", tok, nil)
	if code != 200 {
		t.Fatalf("board page: %d %v", code, board)
	}
	counts := board["counts"].(map[string]any)
	if counts["New"] != 4.0 || counts["WorkingOn"] != 1.0 || counts["Done"] != 0.0 {
		t.Errorf("counts: %v", counts)
	}
	if got := len(board["tasks"].([]any)); got != 3 {
		t.Errorf("board page: %d tasks, want 2 of New and 1 of WorkingOn", got)
	}
	if board["parents"].(map[string]any)[ids[0]] != "Task 0" {
		t.Errorf("parents: %v", board["parents"])
	}
	var walked []string
	for after, pages := "", 0; ; pages++ {
		code, page, _ := call(t, "GET", url+"/api/p/"+p+"/tasks?status=New&limit=3&after="+after, tok, nil)
		if code != 200 || pages > 3 {
			t.Fatalf("list page: %d %v", code, page)
		}
		if page["total"] != 4.0 {
			t.Errorf("total: %v", page["total"])
		}
		for _, x := range page["tasks"].([]any) {
			walked = append(walked, x.(map[string]any)["title"].(string))
		}
		if after = page["next"].(string); after == "" {
			break
		}
	}
	if strings.Join(walked, ",") != "Task 0,Task 1,Task 2,Task 3" {
		t.Errorf("walked %v", walked)
	}
	for _, q := range []string{"per_status=0", "limit=501", "per_status=x"} {
		if code, res, _ := call(t, "GET", url+"/api/p/"+p+"/tasks?"+q, tok, nil); code != 400 || !strings.Contains(fmt.Sprint(res["error"]), "from 1 to 500") {
			t.Errorf("%s: %d %v", q, code, res)
		}
	}
}
