package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// Credentials never come from a flag value (it would show in ps and shell
// history): the password is read from the environment or a file.
const (
	envUsername = "TAGFLOW_REGISTRY_USERNAME"
	envPassword = "TAGFLOW_REGISTRY_PASSWORD"
)

// registryFlags are the connection settings every registry command shares.
type registryFlags struct {
	registry     string
	username     string
	passwordFile string
	caFile       string
	insecure     []string
	retries      int
	password     string // set by the Action from its secret input; never a flag
}

func (f *registryFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.registry, "registry", "", "registry host[/namespace] (default from config)")
	fs.StringVar(&f.username, "username", "", "registry username (default $"+envUsername+"; without one, Docker config and credential helpers are used)")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the registry password or token (default $"+envPassword+")")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM bundle of extra CAs to trust (or set SSL_CERT_FILE)")
	fs.StringSliceVar(&f.insecure, "insecure-registry", nil, "host[:port] that may be reached over plain HTTP (loopback always may)")
	fs.IntVar(&f.retries, "retries", 5, "tries per request when the registry throttles (429, honouring Retry-After) or fails (5xx)")
}

// client builds a registry client; a terminal gets upload progress, CI does not.
func (f *registryFlags) client(a *app) (*registry.Client, error) {
	opts := []registry.Option{registry.WithRetry(max(f.retries, 1), 60*time.Second)}
	user := f.username
	if user == "" {
		user = os.Getenv(envUsername)
	}
	if user != "" {
		pass := f.password
		if pass == "" {
			pass = os.Getenv(envPassword)
		}
		if f.passwordFile != "" {
			b, err := os.ReadFile(f.passwordFile)
			if err != nil {
				return nil, usagef("reading --password-file: %w", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		if pass == "" {
			return nil, usagef("registry username %q given without a password: set $%s or --password-file", user, envPassword)
		}
		opts = append(opts, registry.WithBasicAuth(user, pass))
	}
	if f.caFile != "" {
		opts = append(opts, registry.WithCAFile(f.caFile))
	}
	if len(f.insecure) > 0 {
		opts = append(opts, registry.WithInsecure(f.insecure...))
	}
	if isTerminal(a.stderr) && os.Getenv("CI") == "" {
		opts = append(opts, registry.WithProgress(func(done, total int64) {
			fmt.Fprintf(a.stderr, "\rpushed %s of %s", mib(done), mib(total))
			if done == total {
				fmt.Fprintln(a.stderr)
			}
		}))
	}
	return registry.New(opts...)
}

func (f *registryFlags) repository(cfg *config.Config, service string) (string, error) {
	reg := f.registry
	if reg == "" {
		reg = cfg.Registry
	}
	if v := cfg.Rules().CheckRegistry(reg); v != nil {
		return "", policyRefusal(v.String())
	}
	return reg + "/" + service, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// policyRefusal is a refusal by policy: exit 1, not a usage error.
type policyRefusal string

func (p policyRefusal) Error() string { return "policy: " + string(p) }

func (a *app) writeJSON(v any) error { return jsonTo(a.stdout, v) }

func jsonTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) pushCommand() *cobra.Command {
	var req plan.Request
	var rf registryFlags
	var image, mountFrom string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "push --image PATH --service NAME --env ENV [--release] [--source DIR] [--registry HOST/NS]",
		Short: "Push an image with the whole tag set of its plan and print its digest",
		Long: `push plans the build (as 'tagflow plan' does), refuses if the policy does, then
pushes the image — an OCI layout directory or a docker-archive tarball — to
<registry>/<service> under every tag of the plan: each blob uploaded once, blobs
the registry already has skipped, one manifest per tag. Immutable tags (vX.Y.Z,
the SHA) that already name another digest stop the push before anything is
written. An image labelled with another commit than the source's is refused.`,
		Example: `  tagflow push --image build/echo.tar --service echo-server --env dev --source examples/echo-server
  TAGFLOW_REGISTRY_USERNAME=ci TAGFLOW_REGISTRY_PASSWORD=… tagflow push --image out/ --service echo-server --env staging --release`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			req.Registry = rf.registry
			p, err := a.allowedPlan(cmd.Context(), cfg, req)
			if err != nil {
				return err
			}
			art, err := registry.Load(image)
			if err != nil {
				return err
			}
			if art.Image != nil {
				cf, err := art.Image.ConfigFile()
				if err != nil {
					return fmt.Errorf("reading image %s: %w", image, err)
				}
				if err := p.CheckImage(cf.Config.Labels); err != nil {
					return err
				}
			}
			c, err := rf.client(a)
			if err != nil {
				return err
			}
			repo, err := registry.ParseRepository(p.Repository)
			if err != nil {
				return err
			}
			var popts []registry.PushOption
			if mountFrom != "" {
				from, err := registry.ParseRepository(mountFrom)
				if err != nil {
					return usageError{err}
				}
				popts = append(popts, registry.MountFrom(from))
			}
			pushed, err := c.Push(cmd.Context(), art, repo, p.Tags, popts...)
			if err != nil {
				return err
			}
			if asJSON {
				return a.writeJSON(pushed)
			}
			fmt.Fprintf(a.stdout, "digest  %s\n", pushed.Digest)
			for _, r := range pushed.References {
				fmt.Fprintf(a.stdout, "pushed  %s\n", r)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "OCI layout directory or docker-archive tarball (required)")
	addPlanFlags(f, &req, true)
	f.StringVar(&mountFrom, "mount-from", "", "repository on the same registry to mount shared layers from instead of uploading them")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	rf.add(f)
	required(cmd, "image", "service", "env")
	return cmd
}

func (a *app) tagCommand() *cobra.Command {
	var rf registryFlags
	var image string
	var names []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tag --image REPO@sha256:DIGEST --tag TAG [--tag TAG…]",
		Short: "Point tags at an existing digest by copying its manifest (no blobs move)",
		Long: `tag points each tag at the digest by copying the manifest byte for byte, so the
digest stays exactly the same — a promotion or rollback, never a rebuild. An
immutable tag (vX.Y.Z or a SHA) may be created but never moved; a tag already at
the digest is left alone and reported unchanged. Tags must pass the policy.`,
		Example: `  tagflow tag --image localhost:5000/echo-server@sha256:… --tag env-prod`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			src, err := registry.ParseDigestRef(image)
			if err != nil {
				return usageError{err}
			}
			rules := cfg.Rules()
			// Allow-list prefixes match whole path segments, so the repository itself can be judged.
			if v := rules.CheckRegistry(src.Context().String()); v != nil {
				return policyRefusal(v.String())
			}
			for _, t := range names {
				if tags.Parse(t).Kind == tags.Latest {
					return policyRefusal("tag latest is never moved by 'tagflow tag'; it only comes with a dev build")
				}
				if v := rules.CheckTag(t); v != nil {
					return policyRefusal(v.String())
				}
			}
			c, err := rf.client(a)
			if err != nil {
				return err
			}
			moved, err := c.Retag(cmd.Context(), src, names...)
			if err != nil {
				return err
			}
			if asJSON {
				return a.writeJSON(moved)
			}
			for _, m := range moved {
				switch {
				case !m.Changed:
					fmt.Fprintf(a.stdout, "unchanged  %s already at %s\n", m.Tag, m.To)
				case m.From == "":
					fmt.Fprintf(a.stdout, "created    %s → %s\n", m.Tag, m.To)
				default:
					fmt.Fprintf(a.stdout, "moved      %s %s → %s\n", m.Tag, m.From, m.To)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "the digest to point at: REPO@sha256:DIGEST (required)")
	f.StringSliceVar(&names, "tag", nil, "tag to point at it; repeat for several (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	rf.add(f)
	_ = cmd.MarkFlagRequired("image")
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

func (a *app) verifyCommand() *cobra.Command {
	var rf registryFlags
	var service, env, sha string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --service NAME --env ENV --sha SHA",
		Short: "Check that env-<env> names the digest of the approved commit's SHA tag",
		Long: `verify resolves env-<env> and the approved commit's SHA tag and compares their
digests: the release checklist's "production runs what was approved". It prints
both digests and exits 1 when they differ.`,
		Example: `  tagflow verify --service echo-server --env prod --sha 1a2b3c4`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if v := cfg.Rules().CheckEnv(env); v != nil {
				return usagef("%s", v.Message)
			}
			ref, err := rf.repository(cfg, service)
			if err != nil {
				return err
			}
			repo, err := registry.ParseRepository(ref)
			if err != nil {
				return usageError{err}
			}
			c, err := rf.client(a)
			if err != nil {
				return err
			}
			v, err := c.Verify(cmd.Context(), repo, env, strings.ToLower(sha))
			if err != nil {
				return err
			}
			if asJSON {
				if err := a.writeJSON(v); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				envDigest := v.EnvDigest
				if envDigest == "" {
					envDigest = "(tag does not exist)"
				}
				fmt.Fprintf(tw, "%s\t%s\n", v.EnvRef, envDigest)
				fmt.Fprintf(tw, "%s\t%s\n", v.SHARef, v.SHADigest)
				tw.Flush()
			}
			if !v.Match {
				fmt.Fprintf(a.stderr, "verify: env-%s does not name the approved commit's digest\n", env)
				return errReported
			}
			fmt.Fprintf(a.stderr, "verify: env-%s runs the approved commit %s\n", env, sha)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.StringVar(&env, "env", "", "environment whose tag to check (required)")
	f.StringVar(&sha, "sha", "", "the approved commit (7 or more hex characters) (required)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	rf.add(f)
	required(cmd, "service", "env", "sha")
	return cmd
}

func (a *app) retainCommand() *cobra.Command {
	var rf registryFlags
	var service string
	var keep int
	var apply, asJSON bool
	var protect []string
	cmd := &cobra.Command{
		Use:   "retain --service NAME [--keep N] [--protect DIGEST…] [--apply]",
		Short: "Prune old digests of a service, never one an environment or release runs",
		Long: `retain keeps, per service, the N newest digests (by the image's creation time)
and every digest that an env-* tag, a vX.Y.Z tag or --protect names; images of a
kept index stay with it. Everything else is deleted with its attestations and
signatures (OCI referrers, or the sha256-<digest> fallback tags).

It is a dry run unless --apply is given: it prints what it would delete and why
each kept digest stays. Registries that cannot delete a single tag (distribution
2.8) are handled: a digest is deleted only when no kept tag names it.`,
		Example: `  tagflow retain --service echo-server --keep 10
  tagflow retain --service echo-server --keep 10 --apply`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("keep") {
				keep = cfg.Retention.Keep
			}
			if keep < 1 {
				return usagef("--keep %d: keep at least 1 digest", keep)
			}
			ref, err := rf.repository(cfg, service)
			if err != nil {
				return err
			}
			repo, err := registry.ParseRepository(ref)
			if err != nil {
				return usageError{err}
			}
			prot := map[string]string{}
			for _, d := range protect {
				if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
					return usagef("--protect %q: want sha256:<64 hex>", d)
				}
				prot[d] = "protected by --protect"
			}
			c, err := rf.client(a)
			if err != nil {
				return err
			}
			res, err := c.Retain(cmd.Context(), repo, registry.RetainOptions{Keep: keep, Protect: prot, Apply: apply})
			if err != nil {
				return err
			}
			if asJSON {
				return a.writeJSON(res)
			}
			printRetention(a.stdout, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.IntVar(&keep, "keep", 0, "newest digests to keep besides the protected ones (default retention.keep, 10)")
	f.StringSliceVar(&protect, "protect", nil, "digest to keep whatever its age (e.g. one a GitOps overlay references)")
	f.BoolVar(&apply, "apply", false, "delete; without it, only show what would be deleted")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	rf.add(f)
	_ = cmd.MarkFlagRequired("service")
	return cmd
}

func printRetention(w io.Writer, r *registry.Retention) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verb := "would delete"
	if r.Applied {
		verb = "deleted"
	}
	doomed := 0
	for _, d := range r.Decisions {
		created := "-"
		if !d.Created.IsZero() {
			created = d.Created.UTC().Format("2006-01-02")
		}
		tagList := strings.Join(d.Tags, ",")
		if tagList == "" {
			tagList = "(untagged)"
		}
		if d.Keep {
			fmt.Fprintf(tw, "keep\t%s\t%s\t%s\t%s\n", d.Digest[:19], created, tagList, strings.Join(d.Reasons, "; "))
			continue
		}
		doomed++
		extra := ""
		if n := len(d.Referrers) + len(d.Children); n > 0 {
			extra = fmt.Sprintf("with %d attached manifest(s)", n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", verb, d.Digest[:19], created, tagList, extra)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %d digests, %d kept, %d %s", r.Repository, len(r.Decisions), len(r.Decisions)-doomed, doomed, verb)
	if r.Applied {
		fmt.Fprintf(w, " (%d manifests in all)", len(r.Deleted))
	} else if doomed > 0 {
		fmt.Fprint(w, " — dry run, pass --apply to delete")
	}
	fmt.Fprintln(w)
}
