package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/source"
	"github.com/tagflow/tagflow/pipeline/tags"
	"github.com/tagflow/tagflow/pipeline/version"
)

func (a *app) versionCommand() *cobra.Command {
	var dir, service string
	cmd := &cobra.Command{
		Use:   "version [--source DIR] [--service NAME]",
		Short: "Print the version a release of the source would get",
		Long: `version resolves the release version of the source at HEAD: the VERSION file or a
vX.Y.Z tag on HEAD (config version.source decides which wins; they must agree).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			dir, prefix := sourceFor(cfg, dir, service)
			info, err := source.Read(cmd.Context(), dir)
			if err != nil {
				return err
			}
			res, err := version.Resolve(info, dir, version.Options{File: cfg.Version.File, TagPrefix: prefix, Prefer: version.From(cfg.Version.Source)})
			var mm *version.MismatchError
			if err != nil && !errors.As(err, &mm) {
				return err
			}
			if res.Version == nil {
				return fmt.Errorf("no version at %s: add a %s file or tag HEAD %sX.Y.Z", info.ShortSHA(), cfg.Version.File, prefix)
			}
			fmt.Fprintf(a.stdout, "%s (from %s)\n", tags.VersionName(res.Version), res.From)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "source", ".", "source directory")
	cmd.Flags().StringVar(&service, "service", "", "service whose source and tag prefix to use")
	cmd.AddCommand(a.versionNextCommand())
	return cmd
}

func (a *app) versionNextCommand() *cobra.Command {
	var dir, service string
	cmd := &cobra.Command{
		Use:   "next [--source DIR] [--service NAME]",
		Short: "Compute the next version from conventional commits since the last release tag",
		Long: `next finds the highest release tag reachable from HEAD and reads the commits since:
"fix:" asks for a patch, "feat:" for a minor, "!" after the type or a
"BREAKING CHANGE:" footer for a major. On 0.x a breaking change bumps the minor
(set version.major_on_zero to leave 0.x). It prints the version, then the
commits that decided it.`,
		Example: `  tagflow version next
  tagflow version next --service forward-auth`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			dir, prefix := sourceFor(cfg, dir, service)
			repo, err := source.Open(dir)
			if err != nil {
				return err
			}
			d, err := version.Next(cmd.Context(), repo, prefix, version.NextOptions{MajorOnZero: cfg.Version.MajorOnZero})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, tags.VersionName(d.Next))
			tw := tabwriter.NewWriter(a.stderr, 0, 4, 2, ' ', 0)
			from := d.Tag
			if from == "" {
				from = "no release tag yet (starting from 0.0.0)"
			}
			fmt.Fprintf(tw, "last release\t%s\n", from)
			fmt.Fprintf(tw, "commits since\t%d\n", d.Commits)
			if d.Bump == version.None {
				fmt.Fprintf(tw, "bump\tnone: no feat, fix or breaking commit since the last release\n")
			} else {
				fmt.Fprintf(tw, "bump\t%s\n", d.Bump)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(d.Reasons) > 0 {
				fmt.Fprintln(a.stderr, "decided by:")
			}
			tw = tabwriter.NewWriter(a.stderr, 0, 4, 2, ' ', 0)
			for _, r := range d.Reasons {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Commit[:tags.ShortLen], r.Bump, r.Subject)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "source", ".", "source directory")
	cmd.Flags().StringVar(&service, "service", "", "service whose source and tag prefix to use")
	return cmd
}

// sourceFor picks the directory and tag prefix for a service, when one is named.
func sourceFor(cfg *config.Config, dir, service string) (string, string) {
	if service == "" {
		return dir, cfg.Version.TagPrefix
	}
	svc, _ := cfg.Service(service)
	if d := cfg.SourceDir(svc); d != "" && dir == "." {
		dir = d
	}
	return dir, cfg.TagPrefix(svc)
}
