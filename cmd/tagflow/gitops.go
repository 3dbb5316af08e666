package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/registry"
)

// envGitOpsToken holds the token for the GitOps repository and its provider.
const envGitOpsToken = "TAGFLOW_GITOPS_TOKEN"

func (a *app) gitopsCommand() *cobra.Command {
	var service, env, image, repoURL, provider, commit, scanFile string
	var tagNames []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gitops-pr --service NAME --env ENV --image REPO[:TAG]@sha256:DIGEST [--tag TAG…]",
		Short: "Write an image into the environment's overlay and open (or update) its pull request",
		Long: `gitops-pr sets the configured keys of apps/<service>/overlays/<env>/values.yaml (the
template is gitops.path) to the image — the immutable tag, the digest, or both —
editing only those values so comments and formatting stay. The change goes to the
branch tagflow/<service>/<env> as one commit on top of the base branch, and a pull
request lists the image, every tag, the digest, the source commit, the scan summary
and a verification checklist. Running it again updates the same pull request; with
nothing new it changes nothing. Environments in gitops.direct are committed
straight to the base branch.

The token comes from $TAGFLOW_GITOPS_TOKEN and is never written to a URL or disk.`,
		Example: `  tagflow gitops-pr --service echo-server --env prod --image ghcr.io/acme/echo-server@sha256:… --tag v1.4.2 --tag 1a2b3c4`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if v := cfg.Rules().CheckEnv(env); v != nil {
				return usagef("%s", v.Message)
			}
			ref, err := registry.ParseDigestRef(image)
			if err != nil {
				return usageError{err}
			}
			if t := imageTag(image); t != "" {
				tagNames = append([]string{t}, tagNames...)
			}
			tag, err := gitops.PickTag(tagNames, cfg.GitOps.Tag)
			if err != nil {
				return usageError{err}
			}
			d := gitops.Deployment{
				Service: service, Env: env, Tags: tagNames, Commit: commit, SourceURL: cfg.SourceURL,
				Image:  gitops.Image{Repository: ref.Context().String(), Tag: tag, Digest: ref.DigestStr()},
				Verify: cfg.GitOps.Verify, BuildID: buildID(os.Getenv),
			}
			if scanFile != "" {
				b, err := os.ReadFile(scanFile)
				if err != nil {
					return usagef("reading --scan-summary: %w", err)
				}
				d.Scan = string(b)
			}
			target, err := gitops.NewTarget(cfg, env, repoURL, provider, os.Getenv(envGitOpsToken), nil)
			if err != nil {
				return usageError{err}
			}
			out, err := gitops.Open(cmd.Context(), target, d)
			if errors.Is(err, gitops.ErrName) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return a.writeJSON(out)
			}
			switch {
			case out.Result.UpToDate:
				fmt.Fprintf(a.stdout, "%s already deploys %s on %s: nothing to propose\n", out.Path, d.Image.Digest, target.Repo.Base)
			case out.PR != nil:
				state := map[bool]string{true: "opened", false: "updated"}[out.PR.Created]
				if !out.PR.Changed && !out.Result.Pushed {
					state = "unchanged"
				}
				fmt.Fprintf(a.stdout, "%s\n", out.PR.URL)
				fmt.Fprintf(a.stderr, "pull request #%d %s (branch %s)\n", out.PR.Number, state, out.Result.Branch)
			case out.Result.Pushed:
				fmt.Fprintf(a.stdout, "%s\n", out.Result.Branch)
				fmt.Fprintf(a.stderr, "pushed %s to %s\n", out.Result.Commit[:7], out.Result.Branch)
			default:
				fmt.Fprintf(a.stdout, "%s\n", out.Result.Branch)
				fmt.Fprintf(a.stderr, "branch %s already carries this change\n", out.Result.Branch)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "service name (required)")
	f.StringVar(&env, "env", "", "environment whose overlay to update (required)")
	f.StringVar(&image, "image", "", "the image by digest: REPO[:TAG]@sha256:DIGEST (required)")
	f.StringSliceVar(&tagNames, "tag", nil, "a tag the digest carries; repeat (the overlay gets the immutable one)")
	f.StringVar(&repoURL, "repo", "", "GitOps repository URL (default gitops.repo)")
	f.StringVar(&provider, "provider", "", "github, gitea or none (default gitops.provider)")
	f.StringVar(&commit, "commit", "", "source commit SHA, for the message and the link")
	f.StringVar(&scanFile, "scan-summary", "", "Markdown scan summary to include")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	required(cmd, "service", "env", "image")
	return cmd
}

// imageTag returns the TAG of REPO:TAG@DIGEST, if any (a registry port is not a tag).
func imageTag(ref string) string {
	head, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexAny(head, ":/"); i >= 0 && head[i] == ':' {
		return head[i+1:]
	}
	return ""
}

// buildID names the CI run when there is one.
func buildID(getenv func(string) string) string {
	if id := getenv("GITHUB_RUN_ID"); id != "" {
		return "github-actions/" + id + "/" + getenv("GITHUB_RUN_ATTEMPT")
	}
	return getenv("TAGFLOW_BUILD_ID")
}
