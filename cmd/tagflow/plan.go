package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/plan"
)

func (a *app) planCommand() *cobra.Command {
	var req plan.Request
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan --service NAME --env ENV [--source DIR] [--release] [--registry HOST/NS] [--latest] [--json]",
		Short: "Show the tags, image references and labels a build gets, and whether policy allows them",
		Long: `plan resolves the version (VERSION file or vX.Y.Z tag on HEAD, release builds only),
builds the tag set, the full image references and the OCI labels, and checks the policy.

It changes nothing. Exit status 1 means the policy refuses the plan; each violation
is printed with its rule id.`,
		Example: `  tagflow plan --source examples/echo-server --service echo-server --env dev
  tagflow plan --service echo-server --env prod --release --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			p, err := plan.Make(cmd.Context(), cfg, req)
			if errors.Is(err, plan.ErrInput) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(p); err != nil {
					return err
				}
			} else {
				printPlan(a.stdout, p)
			}
			if !p.Allowed() {
				if asJSON {
					for _, v := range p.Violations {
						fmt.Fprintf(a.stderr, "policy: %s\n", v)
					}
				}
				return errReported
			}
			return nil
		},
	}
	f := cmd.Flags()
	addPlanFlags(f, &req, true)
	f.StringVar(&req.Registry, "registry", "", "registry host[/namespace] (default from config)")
	f.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

// addPlanFlags adds the flags that say what to plan; env is left out for
// commands that build without a target environment.
func addPlanFlags(f *pflag.FlagSet, req *plan.Request, env bool) {
	f.StringVar(&req.Source, "source", "", "source directory (default: the service's configured source)")
	f.StringVar(&req.Service, "service", "", "service name: the repository under the registry (required)")
	if env {
		f.StringVar(&req.Env, "env", "", "target environment, e.g. dev, staging, prod (required)")
		f.BoolVar(&req.Latest, "latest", false, "also tag latest (dev only; never prod or protected registries)")
	}
	f.BoolVar(&req.Release, "release", false, "a release build: tag it vX.Y.Z")
	f.StringVar(&req.Branch, "branch", "", "branch being built, for detached CI checkouts (default: read from git)")
}

// allowedPlan makes a plan and refuses it, printing each violation, when the
// policy does: for commands that act on a plan rather than show it.
func (a *app) allowedPlan(ctx context.Context, cfg *config.Config, req plan.Request) (*plan.Plan, error) {
	p, err := plan.Make(ctx, cfg, req)
	if errors.Is(err, plan.ErrInput) {
		return nil, usageError{err}
	}
	if err != nil {
		return nil, err
	}
	if !p.Allowed() {
		for _, v := range p.Violations {
			fmt.Fprintf(a.stderr, "policy: %s\n", v)
		}
		return nil, errReported
	}
	return p, nil
}

func printPlan(w io.Writer, p *plan.Plan) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Plan for %s → %s\n", p.Service, p.Env)
	state := "clean"
	if p.Source.Dirty {
		state = "dirty"
	}
	branch := p.Source.Branch
	if branch == "" {
		branch = "detached HEAD"
	}
	fmt.Fprintf(tw, "  commit\t%s (%s, %s, %s)\n", p.Source.ShortSHA(), branch, state, p.Source.Time.Format("2006-01-02 15:04 UTC"))
	switch {
	case p.Version != "":
		fmt.Fprintf(tw, "  version\t%s (from %s)\n", p.Version, p.VersionRef)
	case p.Release:
		fmt.Fprintf(tw, "  version\tnone found\n")
	default:
		fmt.Fprintf(tw, "  version\tnone (not a release; pass --release to tag vX.Y.Z)\n")
	}
	fmt.Fprintf(tw, "  tags\t%s\n", strings.Join(p.Tags.Names(), "  "))
	for i, img := range p.Images {
		label := ""
		if i == 0 {
			label = "images"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", label, img)
	}
	for i, k := range slices.Sorted(maps.Keys(p.Labels)) {
		label := ""
		if i == 0 {
			label = "labels"
		}
		fmt.Fprintf(tw, "  %s\t%s=%s\n", label, k, p.Labels[k])
	}
	tw.Flush()
	if p.Allowed() {
		fmt.Fprintln(w, "Policy: allowed")
		return
	}
	fmt.Fprintf(w, "Policy: refused (%d violation%s)\n", len(p.Violations), plural(len(p.Violations)))
	for _, v := range p.Violations {
		fmt.Fprintf(w, "  x %s\n", v)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
