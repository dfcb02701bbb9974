package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates/*.html files that are pages; layout.html and
// parts.html are shared by all of them.
var pageNames = []string{"deployments", "deployment", "archive", "session", "sessions", "nodes", "failures", "webhooks", "signin", "error"}

type pages struct{ byName map[string]*template.Template }

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(templateFuncs).ParseFS(templateFiles,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
		p.byName[name] = t
	}
	return p
}

var templateFuncs = template.FuncMap{
	"add":  func(a, b int) int { return a + b },
	"host": hostOf,
}

// layout is what every page's frame needs besides the page's own data.
type layout struct {
	Title  string
	Nav    string
	Viewer viewer
	// Clustered offers the nodes view (cluster mode only).
	Clustered bool
	Page      any
}

// render executes a page into memory first, so a template error is a
// clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	var buf bytes.Buffer
	err := c.pages.byName[page].ExecuteTemplate(&buf, "layout", layout{Title: title, Nav: page, Viewer: viewerOf(r), Clustered: c.cfg.Cluster != nil, Page: data})
	if err != nil {
		c.log.Error("console page failed to render", "page", page, "error", err)
		http.Error(w, "the console page failed to render; see the daemon log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct {
	Status  int
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	c.render(w, r, status, "error", http.StatusText(status), errorView{Status: status, Message: message})
}

func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Small files from the binary: revalidate rather than cache across
		// upgrades.
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
