package promote

import (
	"fmt"
	"strings"
)

// Summary is the Markdown job summary of a release: steps, tags, digest,
// the scan, the pull request.
func (r *Released) Summary() string {
	var b strings.Builder
	title := "tagflow release"
	if r.Plan != nil {
		title = fmt.Sprintf("tagflow release: %s → %s", r.Plan.Service, r.Plan.Env)
	}
	fmt.Fprintf(&b, "## %s\n\n| step | status | detail |\n|---|---|---|\n", title)
	for _, s := range r.Steps {
		mark := map[string]string{"ok": "✅", "skipped": "⚠️", "failed": "❌"}[s.Status]
		fmt.Fprintf(&b, "| %s | %s %s | %s |\n", s.Name, mark, s.Status, strings.ReplaceAll(s.Detail, "|", "\\|"))
	}
	if r.Pushed != nil {
		fmt.Fprintf(&b, "\n**Digest** `%s`\n\n| tag | reference |\n|---|---|\n", r.Pushed.Digest)
		for i, t := range r.Pushed.Tags {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", t, r.Pushed.References[i])
		}
	}
	if r.Record != nil && r.Record.Scan.Summary != "" {
		b.WriteString("\n" + r.Record.Scan.Summary)
	} else if r.Record != nil && r.Record.Scan.Skipped != "" {
		fmt.Fprintf(&b, "\n> **Warning:** not scanned: %s\n", r.Record.Scan.Skipped)
	}
	if r.GitOps != nil {
		fmt.Fprintf(&b, "\n**GitOps**: %s\n", r.GitOps)
	}
	return b.String()
}

// Summary is the Markdown job summary of a promotion.
func (p *Promotion) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## tagflow promote: %s %s → %s\n\n", p.Service, p.From, p.To)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| digest | `%s` |\n| tag | `%s` |\n| commit | `%s` |\n| env tag | %s |\n", p.Digest, p.Tag, p.Commit, moveText(p.Moved.From, p.Moved.To, p.Moved.Changed))
	if p.GitOps != nil {
		fmt.Fprintf(&b, "| GitOps | %s |\n", p.GitOps)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "\n> **Warning:** %s\n", w)
	}
	return b.String()
}

func moveText(from, to string, changed bool) string {
	switch {
	case !changed:
		return "already at `" + to + "`"
	case from == "":
		return "created at `" + to + "`"
	}
	return "moved from `" + from + "`"
}
