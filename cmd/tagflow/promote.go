package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/dashboard"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/local"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/scan"
)

// flowFlags are what release, promote, rollback and status share: the
// registry connection and the GitOps repository.
type flowFlags struct {
	registryFlags
	repoURL, provider string
	asJSON            bool
	token             string // set by the Action from its secret input; default $TAGFLOW_GITOPS_TOKEN
}

func (f *flowFlags) add(fs *pflag.FlagSet) {
	f.registryFlags.add(fs)
	fs.StringVar(&f.repoURL, "repo", "", "GitOps repository URL (default gitops.repo)")
	fs.StringVar(&f.provider, "provider", "", "github, gitea or none (default gitops.provider)")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

// deps wires the pipeline to this command line's registry and GitOps settings.
// With no tagflow.yaml and no --registry it brings up the embedded defaults.
func (a *app) deps(ctx context.Context, cfg *config.Config, f *flowFlags) (promote.Deps, error) {
	switch {
	case f.registry != "":
		cfg.Registry = f.registry
	case cfg.File == "":
		state := stateDir()
		if f.repoURL != "" {
			cfg.GitOps.Repo = f.repoURL
		}
		env, err := local.Setup(ctx, cfg, state, filepath.Join("examples", "gitops"))
		if err != nil {
			return promote.Deps{}, err
		}
		a.closers = append(a.closers, func() { env.Close() })
		fmt.Fprintf(a.stderr, "no tagflow.yaml: embedded registry %s (stored in %s)", env.Registry.Host, filepath.Join(state, "registry"))
		if env.GitOps != "" {
			fmt.Fprintf(a.stderr, ", local GitOps repository %s", env.GitOps)
		}
		fmt.Fprintln(a.stderr)
	}
	if v := cfg.Rules().CheckRegistry(cfg.Registry); v != nil {
		return promote.Deps{}, policyRefusal(v.String())
	}
	c, err := f.client(a)
	if err != nil {
		return promote.Deps{}, err
	}
	if f.repoURL != "" {
		cfg.GitOps.Repo = f.repoURL
	}
	token := f.token
	if token == "" {
		token = os.Getenv(envGitOpsToken)
	}
	return promote.Deps{Config: cfg, Registry: c, GitOps: func(env string) (gitops.Target, error) {
		return gitops.NewTarget(cfg, env, "", f.provider, token, nil)
	}}, nil
}

func (a *app) promoteCommand() *cobra.Command {
	var f flowFlags
	var r promote.Request
	cmd := &cobra.Command{
		Use:   "promote --service NAME --from ENV --to ENV [--sha SHA] [--skip]",
		Short: "Move the exact digest one environment runs into the next",
		Long: `promote finds the digest --from runs — its env tag and its GitOps overlay must agree —
checks it is the approved commit's image (--sha, default the commit in its release
record) and that its recorded scan passed, points env-<to> at it by copying the
manifest (no rebuild, no blob copy), checks nobody moved the tag meanwhile, and
opens or updates the <to> overlay's pull request with the immutable tag and digest.
Environments are promoted in the configured order; --skip skips one on purpose.
Running it again changes nothing.`,
		Example: `  tagflow promote --service echo-server --from staging --to prod
  tagflow promote --service echo-server --from staging --to prod --sha 1a2b3c4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			d, err := a.deps(cmd.Context(), cfg, &f)
			if err != nil {
				return err
			}
			p, err := promote.Promote(cmd.Context(), d, r)
			if errors.Is(err, promote.ErrOrder) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			for _, w := range p.Warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			if f.asJSON {
				return a.writeJSON(p)
			}
			if !p.Changed {
				fmt.Fprintf(a.stdout, "%s already runs %s in %s: nothing to do\n", r.Service, p.Digest, r.To)
				return nil
			}
			fmt.Fprintf(a.stdout, "promoted %s %s (%s, commit %.7s) from %s to %s\n", r.Service, p.Digest, p.Tag, p.Commit, r.From, r.To)
			a.printMove(p.Moved, p.GitOps)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&r.Service, "service", "", "service name (required)")
	fs.StringVar(&r.From, "from", "", "the environment whose digest to promote (required)")
	fs.StringVar(&r.To, "to", "", "the environment to promote into (required)")
	fs.StringVar(&r.SHA, "sha", "", "the approved commit; refuse unless --from runs its image")
	fs.BoolVar(&r.SkipOrder, "skip", false, "allow skipping environments in between")
	f.add(fs)
	required(cmd, "service", "from", "to")
	return cmd
}

func (a *app) rollbackCommand() *cobra.Command {
	var f flowFlags
	var r promote.RollbackRequest
	cmd := &cobra.Command{
		Use:   "rollback --service NAME --env ENV [--to SHA|DIGEST]",
		Short: "Put an environment back on an earlier digest",
		Long: `rollback points env-<env> back at an earlier digest — by default the one the
overlay deployed before its current one, read from the GitOps repository's history
— and proposes the overlay that deploys it again. A digest the registry no longer
has is refused. --to takes a commit SHA or a sha256 digest instead.`,
		Example: `  tagflow rollback --service echo-server --env prod
  tagflow rollback --service echo-server --env prod --to 1a2b3c4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if v := cfg.Rules().CheckEnv(r.Env); v != nil {
				return usagef("%s", v.Message)
			}
			d, err := a.deps(cmd.Context(), cfg, &f)
			if err != nil {
				return err
			}
			rb, err := promote.RollBack(cmd.Context(), d, r)
			if err != nil {
				return err
			}
			if f.asJSON {
				return a.writeJSON(rb)
			}
			fmt.Fprintf(a.stdout, "rolled %s in %s back from %s to %s (%s)\n", r.Service, r.Env, rb.From, rb.To, rb.Tag)
			a.printMove(rb.Moved, rb.GitOps)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&r.Service, "service", "", "service name (required)")
	fs.StringVar(&r.Env, "env", "", "the environment to roll back (required)")
	fs.StringVar(&r.To, "to", "", "a commit SHA or sha256 digest (default: the previous deployment)")
	f.add(fs)
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func (a *app) statusCommand() *cobra.Command {
	var f flowFlags
	var services []string
	var htmlPath string
	var history int
	cmd := &cobra.Command{
		Use:   "status [--service NAME…] [--json] [--html PATH]",
		Short: "Show what each service runs in each environment, and where registry and GitOps drift",
		Long: `status reads, for each service and environment, the digest env-<env> names in the
registry, the image the GitOps overlay deploys, and the version and commit from the
release record, and flags drift between registry and GitOps. Without --service it
covers every configured service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if len(services) == 0 {
				for _, s := range cfg.Services {
					services = append(services, s.Name)
				}
			}
			if len(services) == 0 {
				return usagef("no services: pass --service or configure services in tagflow.yaml")
			}
			d, err := a.deps(cmd.Context(), cfg, &f)
			if err != nil {
				return err
			}
			cells, err := promote.Status(cmd.Context(), d, services, history)
			if err != nil {
				return err
			}
			if htmlPath != "" {
				if err := writeDashboard(htmlPath, cfg.Environments, cells); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "wrote %s\n", htmlPath)
			}
			if f.asJSON {
				return a.writeJSON(cells)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tENV\tVERSION\tCOMMIT\tREGISTRY\tGITOPS\tDRIFT")
			drift := false
			for _, c := range cells {
				state := "-"
				if c.Drift != "" {
					state, drift = c.Drift, true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.7s\t%s\t%s\t%s\n", c.Service, c.Env, orNone(c.Version), orNone(c.Commit), short(c.RegistryDigest), short(c.OverlayDigest), state)
			}
			tw.Flush()
			if drift {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&services, "service", nil, "service to show; repeat (default: all configured)")
	cmd.Flags().StringVar(&htmlPath, "html", "", "also write the dashboard: one self-contained HTML page")
	cmd.Flags().IntVar(&history, "history", 5, "past deployments to read per environment")
	f.add(cmd.Flags())
	return cmd
}

func (a *app) releaseCommand() *cobra.Command {
	var f flowFlags
	var req promote.ReleaseRequest
	var base, signingKey string
	cmd := &cobra.Command{
		Use:   "release --service NAME --env ENV [--source DIR] [--release] [--image PATH]",
		Short: "Plan, build, scan, push, record and deploy one build",
		Long: `release runs the whole pipeline for one build: plan the tags (policy), build the Go
service without a container engine (or take --image), scan it with Trivy (skipped,
loudly, when Trivy is not installed), push every tag, attach the release record to
the digest, update the environment's GitOps overlay, and write the build-metadata
file. It stops at the first failing step and says which; nothing is pushed when
the policy or the scan refuses.`,
		Example: `  tagflow release --source examples/echo-server --service echo-server --env dev
  tagflow release --service echo-server --env staging --release --image build/echo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			d, err := a.deps(cmd.Context(), cfg, &f)
			if err != nil {
				return err
			}
			req.Plan.Registry = cfg.Registry
			if req.Base, err = a.baseImage(&f.registryFlags, base); err != nil {
				return err
			}
			o, err := scan.OptionsFrom(cfg)
			if err != nil {
				return err
			}
			if !o.Available() {
				req.NoScan = "trivy is not installed"
				fmt.Fprintf(a.stderr, "\n!!! NOTICE: %s: the image will be pushed UNSCANNED and its record will say so.\n!!! Install Trivy or set scan.trivy to gate releases on vulnerabilities.\n\n", req.NoScan)
			} else {
				req.Scan = &o
			}
			req.BuildID = buildID(os.Getenv)
			if signingKey != "" {
				data, err := os.ReadFile(signingKey)
				if err != nil {
					return usagef("reading --signing-key: %w", err)
				}
				if req.SigningKey, err = provenance.ParsePrivateKey(data); err != nil {
					return usageError{err}
				}
			}
			if req.Metadata == "" {
				req.Metadata = filepath.Join(stateDir(), "metadata", req.Plan.Service+".json")
			}
			out, err := promote.Release(cmd.Context(), d, req)
			if f.asJSON && out != nil {
				if jerr := a.writeJSON(out); jerr != nil {
					return jerr
				}
			} else if out != nil {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				for _, s := range out.Steps {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Status, s.Detail)
				}
				tw.Flush()
			}
			var se *promote.StepError
			if errors.As(err, &se) && (se.Step == "plan" && errors.Is(err, plan.ErrInput)) {
				return usageError{err}
			}
			return err
		},
	}
	fs := cmd.Flags()
	addPlanFlags(fs, &req.Plan, true)
	fs.StringVar(&req.Image, "image", "", "a prebuilt image (OCI layout or docker-archive) instead of building")
	fs.StringSliceVar(&req.Platforms, "platform", nil, "os/arch[/variant] to build (default: config platforms)")
	fs.StringVar(&base, "base", "", "base image for the build: a reference or an OCI layout")
	fs.StringVar(&signingKey, "signing-key", "", "PEM ECDSA P-256 private key to sign the SLSA provenance with (unsigned without)")
	fs.StringVar(&req.Metadata, "metadata", "", "where to write the build-metadata JSON (default $TAGFLOW_STATE_DIR or .tagflow, metadata/<service>.json)")
	f.add(fs)
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func writeDashboard(path string, envs []string, cells []promote.Cell) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := dashboard.Render(f, dashboard.New("tagflow — what runs where", envs, cells, time.Now())); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stateDir is where tagflow keeps local state: $TAGFLOW_STATE_DIR or .tagflow.
func stateDir() string {
	if d := os.Getenv("TAGFLOW_STATE_DIR"); d != "" {
		return d
	}
	return local.DefaultState
}

// printMove says what happened to the env tag and the overlay.
func (a *app) printMove(m registry.Moved, o *gitops.Outcome) {
	switch {
	case !m.Changed:
		fmt.Fprintf(a.stdout, "  %s already at %s\n", m.Tag, m.To)
	case m.From == "":
		fmt.Fprintf(a.stdout, "  %s created at %s\n", m.Tag, m.To)
	default:
		fmt.Fprintf(a.stdout, "  %s moved from %s to %s\n", m.Tag, m.From, m.To)
	}
	if o != nil {
		fmt.Fprintf(a.stdout, "  gitops: %s\n", o)
	}
}

func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	switch {
	case d == "":
		return "-"
	case len(d) > 12:
		return d[:12]
	}
	return d
}
