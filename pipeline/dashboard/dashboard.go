// Package dashboard renders the env → digest view as one self-contained
// HTML page: no JavaScript, no external assets, readable on a phone.
package dashboard

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/tagflow/tagflow/pipeline/promote"
)

// Page is what the dashboard shows.
type Page struct {
	Title     string
	Generated time.Time
	Envs      []string
	Services  []Service
}

// Service is one row of the grid.
type Service struct {
	Name  string
	Cells []promote.Cell // in the order of Envs
}

// New groups status cells by service, keeping the environments' order.
func New(title string, envs []string, cells []promote.Cell, now time.Time) Page {
	p := Page{Title: title, Generated: now.UTC(), Envs: envs}
	index := map[string]int{}
	for _, c := range cells {
		i, ok := index[c.Service]
		if !ok {
			i = len(p.Services)
			index[c.Service] = i
			p.Services = append(p.Services, Service{Name: c.Service})
		}
		p.Services[i].Cells = append(p.Services[i].Cells, c)
	}
	return p
}

// Render writes the page.
func Render(w io.Writer, p Page) error { return page.Execute(w, p) }

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": func(d string) string {
		d = strings.TrimPrefix(d, "sha256:")
		if len(d) > 12 {
			return d[:12]
		}
		return d
	},
	"sha": func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { color-scheme: light dark; --ok: #1a7f37; --drift: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; padding: 1rem; max-width: 80rem; margin-inline: auto; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
.meta { color: var(--muted); margin: 0 0 1.25rem; font-size: .9rem; }
section { margin-bottom: 1.5rem; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
.grid { display: grid; gap: .75rem; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); }
.cell { border: 1px solid var(--line); border-left: .35rem solid var(--ok); border-radius: .5rem; padding: .6rem .75rem; }
.cell.empty { border-left-color: var(--line); color: var(--muted); }
.cell.drift { border-left-color: var(--drift); background: color-mix(in srgb, var(--drift) 8%, transparent); }
.env { font-weight: 650; text-transform: uppercase; letter-spacing: .04em; font-size: .8rem; color: var(--muted); }
.version { font-size: 1.15rem; font-weight: 650; }
code { font: .85rem ui-monospace, SFMono-Regular, Menlo, monospace; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .1rem .6rem; margin: .35rem 0; }
dt { color: var(--muted); font-size: .85rem; }
dd { margin: 0; }
.driftnote { color: var(--drift); font-weight: 600; font-size: .9rem; margin: .35rem 0 0; overflow-wrap: anywhere; }
details { margin-top: .35rem; font-size: .85rem; }
details ol { margin: .25rem 0 0; padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">What each service runs in each environment: the registry's <code>env-*</code> tag and the GitOps overlay, side by side. Generated {{when .Generated}}.</p>
{{range .Services}}
<section data-service="{{.Name}}">
<h2>{{.Name}}</h2>
<div class="grid">
{{range .Cells}}
{{$digest := or .RegistryDigest .OverlayDigest}}
<article class="cell{{if .Drift}} drift{{else if not $digest}} empty{{end}}" data-env="{{.Env}}" data-digest="{{$digest}}" data-drift="{{if .Drift}}true{{else}}false{{end}}">
<div class="env">{{.Env}}</div>
{{if $digest}}
<div class="version">{{or .Version (sha .Commit) "unreleased"}}</div>
<dl>
<dt>commit</dt><dd><code>{{or (sha .Commit) "—"}}</code></dd>
<dt>registry</dt><dd><code>{{if .RegistryDigest}}{{short .RegistryDigest}}{{else}}—{{end}}</code></dd>
<dt>gitops</dt><dd><code>{{if .OverlayDigest}}{{short .OverlayDigest}}{{else}}—{{end}}</code></dd>
{{if not .Moved.IsZero}}<dt>moved</dt><dd>{{when .Moved}}</dd>{{end}}
</dl>
{{else}}
<div class="version">nothing deployed</div>
{{end}}
{{if .Drift}}<p class="driftnote">Drift: {{.Drift}}</p>{{end}}
{{if .History}}
<details>
<summary>Recent deployments ({{len .History}})</summary>
<ol>
{{range .History}}<li><code>{{.Tag}}</code> <code>{{short .Digest}}</code> — {{when .When}}</li>
{{end}}</ol>
</details>
{{end}}
</article>
{{end}}
</div>
</section>
{{end}}
</body>
</html>
`))
