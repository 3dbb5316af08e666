package gitops

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"text/template"
)

// Deployment is what one GitOps update deploys.
type Deployment struct {
	Service   string
	Env       string
	Image     Image    // repository, the immutable tag written, digest
	Tags      []string // every tag the digest carries
	Commit    string   // source commit (full SHA)
	SourceURL string   // repository URL of the source, for the commit link
	Scan      string   // Markdown scan summary; empty when none was given
	Verify    []string // verification steps for the checklist; defaults when empty
	BuildID   string
}

// CommitURL links the source commit when the source is a known forge URL.
func (d Deployment) CommitURL() string {
	if d.SourceURL == "" || d.Commit == "" {
		return ""
	}
	return strings.TrimSuffix(d.SourceURL, "/") + "/commit/" + d.Commit
}

// ShortCommit is the 7-character commit.
func (d Deployment) ShortCommit() string {
	if len(d.Commit) < 7 {
		return d.Commit
	}
	return d.Commit[:7]
}

// Steps are the checklist items: the configured ones, or tagflow's defaults.
func (d Deployment) Steps() []string {
	if len(d.Verify) > 0 {
		return d.Verify
	}
	return []string{
		fmt.Sprintf("`tagflow verify --service %s --env %s --sha %s` shows `env-%s` at `%s`", d.Service, d.Env, d.ShortCommit(), d.Env, d.Image.Digest),
		"the scan gate passed for this digest (see Scan)",
		fmt.Sprintf("after sync, the %s workload runs `%s` and its health checks pass", d.Env, d.Image.Digest),
		fmt.Sprintf("rollback is one command: `tagflow rollback --service %s --env %s`", d.Service, d.Env),
	}
}

// DefaultTitle is the pull-request title and commit subject.
const DefaultTitle = `deploy({{.Service}}): {{.Env}} → {{.Image.Tag}}`

// DefaultBody is the pull-request body; override it with a text/template
// over Deployment.
const DefaultBody = `## Deploy {{.Service}} to {{.Env}}

| | |
|---|---|
| image | ` + "`{{.Image.Reference}}`" + ` |
| digest | ` + "`{{.Image.Digest}}`" + ` |
| tags | {{range $i, $t := .Tags}}{{if $i}} {{end}}` + "`{{$t}}`" + `{{end}} |
| source commit | {{if .CommitURL}}[{{.ShortCommit}}]({{.CommitURL}}){{else}}` + "`{{.Commit}}`" + `{{end}} |
{{- if .BuildID}}
| build | {{.BuildID}} |
{{- end}}

### Scan
{{if .Scan}}{{.Scan}}{{else}}No scan result was attached to this update.{{end}}

### Verification
{{range .Steps}}- [ ] {{.}}
{{end}}
<!-- tagflow service={{.Service}} env={{.Env}} digest={{.Image.Digest}} commit={{.Commit}} -->
`

// Message is the commit message: a subject, then one fact per line.
func (d Deployment) Message(title string) string {
	var b strings.Builder
	b.WriteString(title + "\n\n")
	fmt.Fprintf(&b, "service: %s\nenvironment: %s\nimage: %s\ntags: %s\ndigest: %s\nsource-commit: %s\n",
		d.Service, d.Env, d.Image.Reference(), strings.Join(d.Tags, " "), d.Image.Digest, d.Commit)
	return b.String()
}

// Render executes a template over the deployment.
func (d Deployment) Render(name, text string) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("parsing the %s template: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("rendering the %s template: %w", name, err)
	}
	return b.String(), nil
}

// Target says where and how a deployment is written.
type Target struct {
	Repo     *Repo
	Provider Provider // nil: push the branch only
	Direct   bool     // commit straight to the base branch (no pull request)
	PathTmpl string   // overlay path template
	Keys     map[string]Field
	Create   bool
	Title    string // template; DefaultTitle when empty
	Body     string // template; DefaultBody when empty
	Labels   []string
}

// Outcome is what Open did.
type Outcome struct {
	Path   string       `json:"path"`
	Result Result       `json:"result"`
	PR     *PullRequest `json:"pull_request,omitempty"`
}

// String says what happened, for people.
func (o *Outcome) String() string {
	switch {
	case o.Result.UpToDate:
		return o.Path + " already deploys this digest"
	case o.PR != nil:
		return "pull request " + o.PR.URL
	case o.Result.Pushed:
		return "pushed " + o.Result.Branch
	}
	return o.Result.Branch + " already carries this change"
}

// Open writes the deployment into its overlay and proposes it: branch, push,
// pull request opened or updated. Running it again with the same deployment
// changes nothing.
func Open(ctx context.Context, t Target, d Deployment) (*Outcome, error) {
	p, err := OverlayPath(t.PathTmpl, d.Service, d.Env)
	if err != nil {
		return nil, err
	}
	var edits []Edit
	for key, f := range t.Keys {
		v := d.Image.Value(f)
		if v == "" {
			return nil, fmt.Errorf("setting %s in %s: the deployment has no %s", key, p, f)
		}
		edits = append(edits, Edit{Path: key, Value: v})
	}
	slices.SortFunc(edits, func(a, b Edit) int { return strings.Compare(a.Path, b.Path) })
	title, err := d.Render("title", orDefault(t.Title, DefaultTitle))
	if err != nil {
		return nil, err
	}
	body, err := d.Render("body", orDefault(t.Body, DefaultBody))
	if err != nil {
		return nil, err
	}
	res, err := t.Repo.Propose(ctx, Change{Service: d.Service, Env: d.Env, Path: p, Edits: edits, Create: t.Create, Message: d.Message(title)}, t.Direct)
	out := &Outcome{Path: p, Result: res}
	if err != nil || t.Direct || t.Provider == nil || res.UpToDate {
		return out, err
	}
	pr, err := t.Provider.Upsert(ctx, Proposal{Head: res.Branch, Base: t.Repo.Base, Title: title, Body: body, Labels: t.Labels})
	if err != nil {
		return out, err
	}
	out.PR = &pr
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
