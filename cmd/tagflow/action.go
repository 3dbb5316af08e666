package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sethvargo/go-githubactions"
	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/policy"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/scan"
)

// secretInputs are masked before anything else happens.
var secretInputs = []string{"registry-password", "gitops-token", "signing-key"}

func (a *app) actionCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "action",
		Short:  "Run as the GitHub Action (reads INPUT_*, writes outputs and the job summary)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gha := githubactions.New(githubactions.WithGetenv(a.getenv), githubactions.WithWriter(a.stdout))
			return a.runAction(cmd, gha)
		},
	}
}

func (a *app) runAction(cmd *cobra.Command, gha *githubactions.Action) error {
	in := func(k string) string { return strings.TrimSpace(gha.GetInput(k)) }
	for _, k := range secretInputs {
		for _, line := range strings.Split(gha.GetInput(k), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				gha.AddMask(line)
			}
		}
	}
	if c := in("config"); c != "" {
		a.configPath = c
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	f := flowFlags{repoURL: in("gitops-repo"), provider: in("provider"), token: gha.GetInput("gitops-token")}
	f.registry, f.username, f.password, f.retries = in("registry"), in("registry-username"), gha.GetInput("registry-password"), 5
	ctx := cmd.Context()

	switch command := in("command"); command {
	case "release":
		d, err := a.deps(ctx, cfg, &f)
		if err != nil {
			return err
		}
		req := promote.ReleaseRequest{
			Plan:    plan.Request{Source: in("source"), Service: in("service"), Env: in("env"), Release: in("release") == "true", Branch: actionBranch(gha, in("branch"))},
			Image:   in("image"),
			BuildID: buildID(a.getenv),
		}
		if df := in("dockerfile"); df != "" {
			// Dockerfile builds need an engine: the action's own Dagger module
			// builds, with the plan's labels, and the tarball is released as a
			// prebuilt image (scanned, pushed and recorded like any other).
			p, err := a.allowedPlan(ctx, d.Config, req.Plan)
			if err != nil {
				annotate(gha, err)
				return err
			}
			if req.Image, err = daggerBuild(ctx, a.getenv("TAGFLOW_ACTION_PATH"), req.Plan.Source, df, p.Labels); err != nil {
				return err
			}
		}
		req.Metadata = in("metadata")
		if req.Metadata == "" {
			req.Metadata = "tagflow-metadata.json"
		}
		if key := gha.GetInput("signing-key"); key != "" {
			if req.SigningKey, err = provenance.ParsePrivateKey([]byte(key)); err != nil {
				return usageError{fmt.Errorf("input signing-key: %w", err)}
			}
		}
		o, err := a.actionScan(cfg, in)
		if err != nil {
			return err
		}
		if o.Available() {
			req.Scan = &o
		} else {
			req.NoScan = "trivy is not installed on the runner"
			gha.Warningf("trivy is not installed: the image is pushed unscanned and its record says so")
		}
		out, err := promote.Release(ctx, d, req)
		if out != nil {
			gha.AddStepSummary(out.Summary())
			if out.Plan != nil {
				gha.SetOutput("version", out.Plan.Version)
			}
			if out.Pushed != nil {
				gha.SetOutput("tags", strings.Join(out.Pushed.Tags, "\n"))
				gha.SetOutput("digest", out.Pushed.Digest)
				gha.SetOutput("image", out.Pushed.DigestRef())
			}
			gha.SetOutput("scan-passed", scanPassed(out))
			if out.GitOps != nil && out.GitOps.PR != nil {
				gha.SetOutput("pr-url", out.GitOps.PR.URL)
			}
			if out.Metadata != "" {
				gha.SetOutput("metadata", out.Metadata)
			}
		}
		annotate(gha, err)
		return err
	case "promote":
		d, err := a.deps(ctx, cfg, &f)
		if err != nil {
			return err
		}
		p, err := promote.Promote(ctx, d, promote.Request{Service: in("service"), From: in("from"), To: in("to"), SHA: in("sha"), SkipOrder: in("skip") == "true"})
		if err != nil {
			annotate(gha, err)
			return err
		}
		gha.AddStepSummary(p.Summary())
		gha.SetOutput("digest", p.Digest)
		gha.SetOutput("image", cfg.Registry+"/"+p.Service+"@"+p.Digest)
		gha.SetOutput("tags", p.Tag)
		if p.GitOps != nil && p.GitOps.PR != nil {
			gha.SetOutput("pr-url", p.GitOps.PR.URL)
		}
		for _, w := range p.Warnings {
			gha.Warningf("%s", w)
		}
		return nil
	case "rollback":
		d, err := a.deps(ctx, cfg, &f)
		if err != nil {
			return err
		}
		rb, err := promote.RollBack(ctx, d, promote.RollbackRequest{Service: in("service"), Env: in("env"), To: in("to")})
		if err != nil {
			annotate(gha, err)
			return err
		}
		gha.AddStepSummary(fmt.Sprintf("## tagflow rollback: %s in %s\n\n`%s` → `%s` (%s)\n\n**GitOps**: %s\n", rb.Service, rb.Env, rb.From, rb.To, rb.Tag, rb.GitOps))
		gha.SetOutput("digest", rb.To)
		gha.SetOutput("tags", rb.Tag)
		if rb.GitOps != nil && rb.GitOps.PR != nil {
			gha.SetOutput("pr-url", rb.GitOps.PR.URL)
		}
		return nil
	case "scan":
		o, err := a.actionScan(cfg, in)
		if err != nil {
			return err
		}
		o.Image = in("image")
		res, err := scan.Run(ctx, o)
		if err != nil {
			return err
		}
		gha.AddStepSummary(res.Markdown())
		gha.SetOutput("scan-passed", fmt.Sprint(res.Passed))
		for _, fd := range res.Failing {
			gha.WithFieldsMap(map[string]string{"title": fd.Severity + " " + fd.ID}).Errorf("%s %s in %s (fixed in %s) %s", fd.ID, fd.Installed, fd.Package, orNone(fd.Fixed), fd.URL)
		}
		if !res.Passed {
			return errReported
		}
		return nil
	case "status":
		d, err := a.deps(ctx, cfg, &f)
		if err != nil {
			return err
		}
		services := strings.Fields(strings.ReplaceAll(in("service"), ",", " "))
		if len(services) == 0 {
			for _, s := range cfg.Services {
				services = append(services, s.Name)
			}
		}
		cells, err := promote.Status(ctx, d, services, 0)
		if err != nil {
			return err
		}
		data, _ := json.Marshal(cells)
		gha.SetOutput("status", string(data))
		var b strings.Builder
		b.WriteString("## tagflow status\n\n| service | env | version | digest | drift |\n|---|---|---|---|---|\n")
		for _, c := range cells {
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s |\n", c.Service, c.Env, orNone(c.Version), short(c.RegistryDigest), orNone(c.Drift))
		}
		gha.AddStepSummary(b.String())
		return nil
	default:
		return usagef("input command %q: want release, promote, rollback, scan or status", command)
	}
}

// daggerBuild builds a Dockerfile with the Dagger module at module (the
// action's checkout) and exports the image as a docker-archive.
func daggerBuild(ctx context.Context, module, source, dockerfile string, labels map[string]string) (string, error) {
	if module == "" {
		module = "."
	}
	if source == "" {
		source = "."
	}
	out := filepath.Join(os.TempDir(), "tagflow-dagger-build.tar")
	args := []string{"call", "-m", module, "build", "--source", source, "--dockerfile", dockerfile}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		args = append(args, "--labels", k+"="+labels[k])
	}
	args = append(args, "export", "--path", out)
	cmd := exec.CommandContext(ctx, "dagger", args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s with the Dagger module: %w\n%s", dockerfile, err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// actionScan is the scan configuration with the Action's inputs on top.
func (a *app) actionScan(cfg *config.Config, in func(string) string) (scan.Options, error) {
	o, err := scan.OptionsFrom(cfg)
	if err != nil {
		return o, err
	}
	if s := in("severity"); s != "" {
		o.Gate = strings.Split(s, ",")
	}
	if in("ignore-unfixed") == "true" {
		o.IgnoreUnfixed = true
	}
	if v := in("trivy-db-repository"); v != "" {
		o.DBRepository = v
	}
	return o, nil
}

// annotate turns policy violations into error annotations, one per rule.
func annotate(gha *githubactions.Action, err error) {
	var pe *policy.Error
	if errors.As(err, &pe) {
		for _, v := range pe.Violations {
			gha.WithFieldsMap(map[string]string{"title": "tagflow policy: " + string(v.Rule)}).Errorf("%s", v.Message)
		}
		return
	}
	if err != nil {
		gha.Errorf("%s", err)
	}
}

func scanPassed(r *promote.Released) string {
	switch {
	case r.Record == nil && r.Scan == nil:
		return "false"
	case r.Scan != nil:
		return fmt.Sprint(r.Scan.Passed)
	case r.Record.Scan.Skipped != "":
		return "skipped"
	}
	return fmt.Sprint(r.Record.Scan.Passed)
}

// actionBranch is the branch built: the input, or the pushed branch.
func actionBranch(gha *githubactions.Action, input string) string {
	if input != "" {
		return input
	}
	c, err := gha.Context()
	if err == nil && c.RefName != "" && c.RefType == "branch" {
		return c.RefName
	}
	return ""
}
