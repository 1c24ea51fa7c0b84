package report

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshot = flag.String("screenshot", os.Getenv("MESHCONFORM_SCREENSHOT"),
	"write a PNG screenshot of the matrix page here (env MESHCONFORM_SCREENSHOT); docs/images/matrix.png is one")

// browserPath finds a Chromium-family browser: $MESHCONFORM_BROWSER, Debian's chromium, or
// one on PATH (GitHub's runners have google-chrome).
func browserPath() string {
	if p := os.Getenv("MESHCONFORM_BROWSER"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts a headless browser that cannot reach the network (this machine's is
// closed, and the page must need none) with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := browserPath()
	if path == "" {
		msg := "no browser: install Debian's chromium (apt-get install chromium; .ci/run does) or set MESHCONFORM_BROWSER to a Chromium-family binary"
		if os.Getenv("MESHCONFORM_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + " (MESHCONFORM_REQUIRE_BROWSER=1)")
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout (it would end the browser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

type cellSeen struct {
	Key    string `json:"key"`
	Status string `json:"status"`
	Text   string `json:"text"`
	Color  string `json:"color"`
	Title  string `json:"title"`
}

type rowSeen struct {
	ID      string `json:"id"`
	Area    string `json:"area"`
	Display string `json:"display"`
	Notable bool   `json:"notable"`
}

func TestMatrixPageInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	m := Merge(sampleRuns()...)
	page := filepath.Join(t.TempDir(), "matrix.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.HTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	run := func(t *testing.T, what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(t *testing.T, js string, out any) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		switch o := out.(type) {
		case *[]cellSeen:
			*o, err = chromedp.Run(c, chromedp.Evaluate[[]cellSeen](js))
		case *[]rowSeen:
			*o, err = chromedp.Run(c, chromedp.Evaluate[[]rowSeen](js))
		case *string:
			*o, err = chromedp.Run(c, chromedp.Evaluate[string](js))
		default:
			t.Fatalf("eval into %T", out)
		}
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
	}
	rows := func(t *testing.T) []rowSeen {
		var rs []rowSeen
		eval(t, `[...document.querySelectorAll("#matrix tbody tr")].map(tr => ({id: tr.dataset.id, area: tr.dataset.area,
			display: getComputedStyle(tr).display, notable: tr.dataset.notable === "true"}))`, &rs)
		return rs
	}

	run(t, "open the page", chromedp.Navigate("file://"+page))
	// The script sets data-ready last: it ran through and the cell data parsed.
	run(t, "wait for the page script", chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))

	t.Run("header names the versions and the summary", func(t *testing.T) {
		var versions, summary string
		eval(t, `document.getElementById("versions").textContent`, &versions)
		eval(t, `document.getElementById("summary").textContent`, &summary)
		for _, v := range append(m.IstioVersions(), m.KubernetesVersions()...) {
			if !strings.Contains(versions, v) {
				t.Errorf("header %q does not name version %s", versions, v)
			}
		}
		if summary != m.Summary.Line() {
			t.Errorf("summary line is %q, want %q", summary, m.Summary.Line())
		}
	})

	t.Run("every cell has its status, word and colour", func(t *testing.T) {
		var cells []cellSeen
		eval(t, `[...document.querySelectorAll("#matrix td.cell")].map(td => ({key: td.dataset.key, status: td.dataset.status,
			text: td.textContent, color: getComputedStyle(td).backgroundColor, title: td.title}))`, &cells)
		seen := map[string]cellSeen{}
		for _, c := range cells {
			seen[c.Key] = c
		}
		colour := map[string]string{"pass": ColorPass, "equivalent": ColorEquivalent, "deviation": ColorFail,
			"fail": ColorFail, "skip": ColorSkip, "missing": ColorMissing}
		want := 0
		statuses := map[string]int{}
		for _, r := range m.Rows {
			for i, c := range r.Cells {
				want++
				key := fmt.Sprintf("%s|%d", r.ID, i)
				got, ok := seen[key]
				if !ok {
					t.Errorf("no cell %s (%s on %s) in the page", key, r.ID, m.Columns[i].Label())
					continue
				}
				statuses[c.Status()]++
				if got.Status != c.Status() || got.Text != c.Text() || got.Color != colour[c.Status()] {
					t.Errorf("cell %s on %s shows %s %q in %s, want %s %q in %s", r.ID, m.Columns[i].Label(),
						got.Status, got.Text, got.Color, c.Status(), c.Text(), colour[c.Status()])
				}
				if c.Present && c.Seen() != "" && !strings.Contains(got.Title, c.Seen()) {
					t.Errorf("cell %s: hover text %q lacks the evidence %q", key, got.Title, c.Seen())
				}
			}
		}
		if len(cells) != want {
			t.Errorf("page has %d cells, the matrix %d", len(cells), want)
		}
		// The sample must exercise every colour, or this test proves less than it says.
		for _, s := range []string{"pass", "equivalent", "fail", "skip", "missing"} {
			if statuses[s] == 0 {
				t.Errorf("the sample runs have no %s cell", s)
			}
		}
	})

	// The failing cell of the sample: MTLS-002 on the older Istio, second node image.
	failKey, failCell := "", Cell{}
	for _, r := range m.Rows {
		for i, c := range r.Cells {
			if r.ID == "MTLS-002" && c.Status() == "fail" {
				failKey, failCell = fmt.Sprintf("%s|%d", r.ID, i), c
			}
		}
	}
	if failKey == "" {
		t.Fatal("the sample has no failing MTLS-002 cell")
	}

	t.Run("a click shows the evidence", func(t *testing.T) {
		var hidden string
		eval(t, `String(document.getElementById("details").hidden)`, &hidden)
		if hidden != "true" {
			t.Fatalf("details panel is shown before any click")
		}
		run(t, "click the failing cell", chromedp.Click(chromedp.CSS(`td[data-key="`+failKey+`"]`)))
		run(t, "wait for the details", chromedp.WaitVisible(chromedp.CSS(`#details`)))
		var state, evidence, seen string
		eval(t, `document.getElementById("details-state").textContent`, &state)
		eval(t, `document.getElementById("details-evidence").textContent`, &evidence)
		eval(t, `document.getElementById("details-seen").textContent`, &seen)
		if state != "fail/deviation" {
			t.Errorf("details say %q, want fail/deviation", state)
		}
		for _, want := range []string{"HTTP 200", "Welcome to nginx!", failCell.Specs[0].Message} {
			if !strings.Contains(evidence, want) {
				t.Errorf("details evidence lacks %q:\n%s", want, evidence)
			}
		}
		if seen != failCell.Seen() {
			t.Errorf("details 'seen' is %q, want %q", seen, failCell.Seen())
		}
	})

	if *screenshot != "" {
		// With the details panel open: the picture shows the evidence as well as the colours.
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", *screenshot)
	}

	t.Run("the area filter hides that area's rows only", func(t *testing.T) {
		run(t, "untick mtls", chromedp.Click(chromedp.CSS(`#filters input[name="area"][value="mtls"]`)))
		rs := rows(t)
		if len(rs) != len(m.Rows) {
			t.Fatalf("page has %d rows, the matrix %d", len(rs), len(m.Rows))
		}
		for _, r := range rs {
			if hidden := r.Display == "none"; hidden != (r.Area == "mtls") {
				t.Errorf("row %s (area %s) has display %q after unticking mtls", r.ID, r.Area, r.Display)
			}
		}
		run(t, "tick mtls again", chromedp.Click(chromedp.CSS(`#filters input[name="area"][value="mtls"]`)))
		for _, r := range rows(t) {
			if r.Display == "none" {
				t.Errorf("row %s still hidden after ticking mtls again", r.ID)
			}
		}
	})

	t.Run("only rows that need a look", func(t *testing.T) {
		run(t, "tick only-notable", chromedp.Click(chromedp.CSS(`#only-notable`)))
		shown := 0
		for _, r := range rows(t) {
			if (r.Display != "none") != r.Notable {
				t.Errorf("row %s (notable %v) has display %q with only-notable ticked", r.ID, r.Notable, r.Display)
			}
			if r.Display != "none" {
				shown++
			}
		}
		if shown == 0 || shown == len(m.Rows) {
			t.Errorf("only-notable shows %d of %d rows; the sample should make it filter", shown, len(m.Rows))
		}
	})

	t.Run("each column's run time, and each cell's on request", func(t *testing.T) {
		var runTimes string
		eval(t, `[...document.querySelectorAll("#matrix tfoot td.runtime")].map(td => td.textContent).join("|")`, &runTimes)
		var want []string
		for _, c := range m.Columns {
			want = append(want, c.RunTime())
		}
		if runTimes != strings.Join(want, "|") || want[0] == "" {
			t.Errorf("run time row %q, want %q", runTimes, strings.Join(want, "|"))
		}
		// The pass cell of MTLS-001 on the first column: its duration shows only with the box ticked.
		after := `getComputedStyle(document.querySelector('td[data-key="MTLS-001|0"]'), "::after").content`
		var before, shown, text string
		eval(t, after, &before)
		run(t, "tick durations", chromedp.Click(chromedp.CSS(`#show-durations`)))
		eval(t, after, &shown)
		eval(t, `document.querySelector('td[data-key="MTLS-001|0"]').textContent`, &text)
		if before != "none" || !strings.Contains(shown, "4.2s") || text != "pass" {
			t.Errorf("MTLS-001's duration: %q before ticking, %q after (text %q); want none, then 4.2s beside the word", before, shown, text)
		}
		run(t, "untick durations", chromedp.Click(chromedp.CSS(`#show-durations`)))
		if eval(t, after, &shown); shown != "none" {
			t.Errorf("the duration still shows after unticking: %q", shown)
		}
	})
}
