package scan

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Markdown is the human summary: counts per severity, then the findings
// that fail the gate with package, installed and fixed versions and links,
// then the excused ones.
func (r *Result) Markdown() string {
	var b strings.Builder
	verdict := "passed"
	if !r.Passed {
		verdict = "failed"
	}
	fmt.Fprintf(&b, "### Vulnerability scan %s\n\n", verdict)
	fmt.Fprintf(&b, "`%s` — gate: %s\n\n", r.Image, strings.Join(r.Gate, ", "))
	b.WriteString("| severity | findings |\n|---|---:|\n")
	for i := len(Severities) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "| %s | %d |\n", Severities[i], r.Counts[Severities[i]])
	}
	if len(r.Failing) > 0 {
		fmt.Fprintf(&b, "\n**%d finding(s) fail the gate:**\n\n", len(r.Failing))
		table(&b, r.Failing, false)
	}
	var excused []Finding
	for _, f := range r.Findings {
		if f.Excused != "" && f.Excused != "below the gate" {
			excused = append(excused, f)
		}
	}
	if len(excused) > 0 {
		fmt.Fprintf(&b, "\n%d finding(s) at the gate are excused:\n\n", len(excused))
		table(&b, excused, true)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\n> **Warning:** %s\n", w)
	}
	return b.String()
}

func table(b *strings.Builder, fs []Finding, why bool) {
	b.WriteString("| vulnerability | severity | package | installed | fixed | in |")
	if why {
		b.WriteString(" excused |")
	}
	b.WriteString("\n|---|---|---|---|---|---|")
	if why {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, f := range fs {
		id := f.ID
		if f.URL != "" {
			id = fmt.Sprintf("[%s](%s)", f.ID, f.URL)
		}
		fixed := f.Fixed
		if fixed == "" {
			fixed = "—"
		}
		fmt.Fprintf(b, "| %s | %s | `%s` | %s | %s | `%s` |", id, f.Severity, f.Package, f.Installed, fixed, f.Target)
		if why {
			fmt.Fprintf(b, " %s |", f.Excused)
		}
		b.WriteString("\n")
	}
}

// SARIF writes the findings as a SARIF 2.1.0 log for GitHub code scanning:
// one rule per vulnerability, one result per finding, "error" for findings
// that fail the gate.
func (r *Result) SARIF() ([]byte, error) {
	type text struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string         `json:"id"`
		Name             string         `json:"name"`
		ShortDescription text           `json:"shortDescription"`
		FullDescription  text           `json:"fullDescription"`
		HelpURI          string         `json:"helpUri,omitempty"`
		Help             text           `json:"help"`
		Properties       map[string]any `json:"properties"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		RuleIndex int        `json:"ruleIndex"`
		Level     string     `json:"level"`
		Message   text       `json:"message"`
		Locations []location `json:"locations"`
	}
	var rules []rule
	index := map[string]int{}
	var results []result
	failing := map[string]bool{}
	for _, f := range r.Failing {
		failing[f.ID+"|"+f.Package+"|"+f.Target] = true
	}
	for _, f := range r.Findings {
		if _, ok := index[f.ID]; !ok {
			index[f.ID] = len(rules)
			title := f.Title
			if title == "" {
				title = f.ID
			}
			rules = append(rules, rule{
				ID: f.ID, Name: "Vulnerability", ShortDescription: text{title}, FullDescription: text{title}, HelpURI: f.URL,
				Help:       text{fmt.Sprintf("%s in %s %s (fixed in %s): %s", f.ID, f.Package, f.Installed, orDash(f.Fixed), f.URL)},
				Properties: map[string]any{"security-severity": securitySeverity(f), "tags": []string{"security", "vulnerability", f.Severity}, "precision": "very-high"},
			})
		}
		level := "note"
		switch {
		case failing[f.ID+"|"+f.Package+"|"+f.Target]:
			level = "error"
		case rank(f.Severity) >= rank("MEDIUM"):
			level = "warning"
		}
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = strings.TrimPrefix(f.Target, "/")
		msg := fmt.Sprintf("%s %s: %s %s, fixed in %s", f.Severity, f.ID, f.Package, f.Installed, orDash(f.Fixed))
		if f.Excused != "" {
			msg += " (" + f.Excused + ")"
		}
		results = append(results, result{RuleID: f.ID, RuleIndex: index[f.ID], Level: level, Message: text{msg}, Locations: []location{loc}})
	}
	if rules == nil {
		rules = []rule{}
	}
	if results == nil {
		results = []result{}
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "tagflow", "informationUri": "https://github.com/tagflow/tagflow", "fullName": "tagflow scan (Trivy)", "rules": rules,
			}},
			"results": results,
		}},
	}
	return json.MarshalIndent(log, "", "  ")
}

// securitySeverity is the CVSS-like score GitHub sorts alerts by.
func securitySeverity(f Finding) string {
	if f.Score > 0 {
		return fmt.Sprintf("%.1f", f.Score)
	}
	return [...]string{"0.0", "3.0", "5.5", "8.0", "9.5"}[max(slices.Index(Severities, f.Severity), 0)]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// FailingList names the failing findings on one line.
func (r *Result) FailingList() string {
	var ids []string
	for _, f := range r.Failing {
		ids = append(ids, f.Severity+" "+f.ID+" in "+f.Package)
	}
	return strings.Join(ids, ", ")
}
