// Package scan runs Trivy on an image, reads its JSON report into tagflow's
// own small types, and decides the severity gate. Trivy is a separate
// program, never linked.
package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"
)

// Severities from the least to the most severe, as Trivy names them.
var Severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// DefaultGate is the severities that fail the gate unless told otherwise.
var DefaultGate = []string{"HIGH", "CRITICAL"}

// Errors callers branch on.
var (
	ErrNoDB    = errors.New("trivy has no vulnerability database")
	ErrNoTrivy = errors.New("trivy is not installed")
	ErrInput   = errors.New("trivy could not read the image")
)

// Finding is one vulnerability in one package.
type Finding struct {
	ID        string  `json:"id"`
	Package   string  `json:"package"`
	Installed string  `json:"installed"`
	Fixed     string  `json:"fixed,omitempty"`
	Severity  string  `json:"severity"`
	Title     string  `json:"title,omitempty"`
	URL       string  `json:"url,omitempty"`
	Target    string  `json:"target"` // the file or OS the package was found in
	Type      string  `json:"type"`   // gobinary, debian, …
	Score     float64 `json:"score,omitempty"`
	// Why it does not fail the gate, when it does not: "below gate",
	// "unfixed", ".trivyignore", "allowed until 2027-01-31: reason".
	Excused string `json:"excused,omitempty"`
}

// Allow is an allow-list entry: a finding accepted until a date, for a reason.
type Allow struct {
	ID     string    `json:"id" yaml:"id"`
	Until  time.Time `json:"until" yaml:"until"`
	Reason string    `json:"reason" yaml:"reason"`
}

// Options say how to scan and what fails the gate.
type Options struct {
	Trivy         string   // the trivy binary; default "trivy" on PATH
	Image         string   // an OCI layout directory, a docker-archive tarball, or a registry reference
	CacheDir      string   // Trivy's cache (holds db/trivy.db)
	DBRepository  string   // pull the DB from this OCI repository (a mirror) instead of the default
	Offline       bool     // use the DB in CacheDir as it is: no download
	Gate          []string // severities that fail; default HIGH,CRITICAL
	IgnoreUnfixed bool     // findings without a fixed version do not fail
	IgnoreFile    string   // a .trivyignore file
	Allow         []Allow
	Now           time.Time     // for expiry; default time.Now
	Timeout       time.Duration // default 10 minutes: a scan never hangs
	Env           []string      // extra environment for trivy (TRIVY_USERNAME, TRIVY_INSECURE…)
}

// Result is a decided scan.
type Result struct {
	Image    string         `json:"image"`
	Findings []Finding      `json:"findings"` // all, most severe first
	Failing  []Finding      `json:"failing"`  // those that fail the gate
	Counts   map[string]int `json:"counts"`   // all findings per severity
	Gate     []string       `json:"gate"`
	Passed   bool           `json:"passed"`
	Warnings []string       `json:"warnings,omitempty"` // e.g. expired allow-list entries that matched nothing
	Report   []byte         `json:"-"`                  // Trivy's own JSON report
}

// Run scans the image and decides the gate.
func Run(ctx context.Context, o Options) (*Result, error) {
	if _, err := checkGate(o.Gate); err != nil {
		return nil, err
	}
	trivy, err := o.trivy()
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", o.Image, err)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	args := []string{"image", "--format", "json", "--quiet", "--scanners", "vuln", "--skip-version-check",
		"--disable-telemetry", "--skip-java-db-update", "--timeout", timeout.String()}
	if o.CacheDir != "" {
		args = append(args, "--cache-dir", o.CacheDir)
	}
	if o.Offline {
		args = append(args, "--skip-db-update", "--offline-scan")
	}
	if o.DBRepository != "" {
		args = append(args, "--db-repository", o.DBRepository)
	}
	if _, err := os.Stat(o.Image); err == nil {
		args = append(args, "--input", o.Image) // a layout or tarball on disk
	} else {
		args = append(args, o.Image) // a registry reference
	}
	cmd := exec.CommandContext(ctx, trivy, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, trivyError(o, err, stderr.String(), ctx.Err())
	}
	return Evaluate(stdout.Bytes(), o)
}

// Evaluate decides the gate over a Trivy JSON report (schema version 2):
// the one Run just made, or one Trivy wrote earlier.
func Evaluate(report []byte, o Options) (*Result, error) {
	gate, err := checkGate(o.Gate)
	if err != nil {
		return nil, err
	}
	findings, err := parse(report)
	if err != nil {
		return nil, fmt.Errorf("reading trivy's report for %s: %w", o.Image, err)
	}
	res := &Result{Image: o.Image, Findings: findings, Gate: gate, Report: report}
	ignored, err := readIgnoreFile(o.IgnoreFile, now(o))
	if err != nil {
		return nil, err
	}
	res.decide(o, ignored)
	return res, nil
}

// Available reports whether the Trivy binary the options name can be run.
func (o Options) Available() bool {
	_, err := o.trivy()
	return err == nil
}

func (o Options) trivy() (string, error) {
	name := o.Trivy
	if name == "" {
		name = "trivy"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%s): install it or set its path", ErrNoTrivy, name)
	}
	return path, nil
}

func now(o Options) time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

func checkGate(gate []string) ([]string, error) {
	if len(gate) == 0 {
		return DefaultGate, nil
	}
	var out []string
	for _, s := range gate {
		s = strings.ToUpper(strings.TrimSpace(s))
		if !slices.Contains(Severities, s) {
			return nil, fmt.Errorf("severity %q: want one of %s", s, strings.Join(Severities, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

func trivyError(o Options, err error, stderr string, ctxErr error) error {
	msg := lastLines(stderr, 6)
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return fmt.Errorf("scanning %s: trivy did not finish in time: %w", o.Image, ctxErr)
	case strings.Contains(stderr, "--skip-db-update cannot be specified on the first run"),
		strings.Contains(stderr, "database not found"), strings.Contains(stderr, "no such file or directory") && strings.Contains(stderr, "trivy.db"):
		return fmt.Errorf("scanning %s: %w in %s: run once online, set a --db-repository mirror, or write the DB there", o.Image, ErrNoDB, o.CacheDir)
	case strings.Contains(stderr, "unable to initialize") && strings.Contains(stderr, "input"),
		strings.Contains(stderr, "archive"), strings.Contains(stderr, "unable to open"), strings.Contains(stderr, "image scan error"):
		return fmt.Errorf("scanning %s: %w: %s", o.Image, ErrInput, msg)
	}
	return fmt.Errorf("scanning %s: trivy: %w: %s", o.Image, err, msg)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// trivyReport is the part of Trivy's JSON report tagflow reads.
type trivyReport struct {
	SchemaVersion int `json:"SchemaVersion"`
	Results       []struct {
		Target          string `json:"Target"`
		Class           string `json:"Class"`
		Type            string `json:"Type"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"VulnerabilityID"`
			PkgName          string `json:"PkgName"`
			InstalledVersion string `json:"InstalledVersion"`
			FixedVersion     string `json:"FixedVersion"`
			Severity         string `json:"Severity"`
			Title            string `json:"Title"`
			PrimaryURL       string `json:"PrimaryURL"`
			CVSS             map[string]struct {
				V3Score float64 `json:"V3Score"`
			} `json:"CVSS"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

func parse(report []byte) ([]Finding, error) {
	var r trivyReport
	if err := json.Unmarshal(report, &r); err != nil {
		return nil, err
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("report schema version %d: tagflow reads version 2", r.SchemaVersion)
	}
	var out []Finding
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			f := Finding{ID: v.VulnerabilityID, Package: v.PkgName, Installed: v.InstalledVersion, Fixed: v.FixedVersion,
				Severity: strings.ToUpper(v.Severity), Title: v.Title, URL: v.PrimaryURL, Target: res.Target, Type: res.Type}
			for _, c := range v.CVSS {
				f.Score = max(f.Score, c.V3Score)
			}
			if !slices.Contains(Severities, f.Severity) {
				f.Severity = "UNKNOWN"
			}
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := rank(out[i].Severity), rank(out[j].Severity); a != b {
			return a > b
		}
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Package < out[j].Package
	})
	return out, nil
}

func rank(sev string) int { return slices.Index(Severities, sev) }

// decide marks each finding excused or failing.
func (r *Result) decide(o Options, ignored map[string]bool) {
	t := now(o)
	r.Counts = map[string]int{}
	used := map[string]bool{}
	for i := range r.Findings {
		f := &r.Findings[i]
		r.Counts[f.Severity]++
		switch {
		case !slices.Contains(r.Gate, f.Severity):
			f.Excused = "below the gate"
		case o.IgnoreUnfixed && f.Fixed == "":
			f.Excused = "no fixed version yet (--ignore-unfixed)"
		case ignored[f.ID]:
			f.Excused = "listed in " + o.IgnoreFile
		default:
			if a, ok := allowFor(o.Allow, f.ID); ok {
				used[a.ID] = true
				if t.Before(a.Until) {
					f.Excused = fmt.Sprintf("allowed until %s: %s", a.Until.Format(time.DateOnly), a.Reason)
					break
				}
				f.Excused = ""
				r.Warnings = append(r.Warnings, fmt.Sprintf("allow-list entry %s expired on %s (%s): it no longer excuses %s in %s", a.ID, a.Until.Format(time.DateOnly), a.Reason, f.ID, f.Package))
			}
		}
		if f.Excused == "" {
			r.Failing = append(r.Failing, *f)
		}
	}
	for _, a := range o.Allow {
		if !used[a.ID] && !t.Before(a.Until) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("allow-list entry %s expired on %s and matches nothing: remove it", a.ID, a.Until.Format(time.DateOnly)))
		}
	}
	r.Passed = len(r.Failing) == 0
}

func allowFor(list []Allow, id string) (Allow, bool) {
	for _, a := range list {
		if strings.EqualFold(a.ID, id) {
			return a, true
		}
	}
	return Allow{}, false
}

// readIgnoreFile reads a .trivyignore: one ID a line, "#" comments, an
// optional "exp:YYYY-MM-DD" after which the line no longer applies (as in
// Trivy).
func readIgnoreFile(path string, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading ignore file: %w", err)
	}
	for n, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		active := true
		for _, f := range fields[1:] {
			if d, ok := strings.CutPrefix(f, "exp:"); ok {
				exp, err := time.Parse(time.DateOnly, d)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %q: want exp:YYYY-MM-DD", path, n+1, f)
				}
				active = now.Before(exp)
			}
		}
		if active {
			out[fields[0]] = true
		}
	}
	return out, nil
}
