package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/admission"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Export tagflow's image rules as cluster admission policy"}
	var format, output string
	var digestNS []string
	export := &cobra.Command{
		Use:   "export --format kyverno|gatekeeper [--digest-namespace NS…] [--output FILE]",
		Short: "Write a Kyverno ClusterPolicy or a Gatekeeper ConstraintTemplate from tagflow.yaml",
		Long: `export writes, from the same configuration the CI policy reads (registries.allowed and
policy.tag_pattern), an admission policy that admits only images from the allowed
registries whose tag matches the pattern or that are pinned by digest — for
containers, init containers and ephemeral containers. --digest-namespace requires
digest-pinned images in those namespaces (production, say).`,
		Example: `  tagflow policy export --format kyverno > tagflow-policy.yaml
  tagflow policy export --format gatekeeper --digest-namespace prod --output gatekeeper.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			r, err := admission.From(cfg, digestNS)
			if err != nil {
				return err
			}
			var out []byte
			switch format {
			case "kyverno":
				out, err = r.Kyverno()
			case "gatekeeper":
				out, err = r.Gatekeeper()
			default:
				return usagef("--format %q: want kyverno or gatekeeper", format)
			}
			if err != nil {
				return err
			}
			if output == "" {
				_, err = a.stdout.Write(out)
				return err
			}
			if err := os.WriteFile(output, out, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s\n", output)
			return nil
		},
	}
	f := export.Flags()
	f.StringVar(&format, "format", "", "kyverno or gatekeeper (required)")
	f.StringSliceVar(&digestNS, "digest-namespace", nil, "namespace whose pods must use digest-pinned images; repeat")
	f.StringVar(&output, "output", "", "write here instead of stdout")
	_ = export.MarkFlagRequired("format")
	cmd.AddCommand(export)
	return cmd
}
