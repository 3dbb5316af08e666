package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/registry"
)

func (a *app) provenanceCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "provenance", Short: "Check the SLSA provenance attached to a released digest"}
	var rf registryFlags
	var image, keyFile, commit string
	verify := &cobra.Command{
		Use:   "verify --image REPO@sha256:DIGEST [--key cosign.pub] [--commit SHA]",
		Short: "Verify the provenance of a digest: its subject, its source commit and its signature",
		Long: `verify reads the in-toto statements (SLSA v1 provenance, DSSE envelopes) attached to the
digest and checks that one is about this digest, names --commit as its source (when
given) and is signed by --key (a PEM public key, e.g. cosign.pub; without --key the
signature is not checked). Exit 1 when none verifies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ref, err := registry.ParseDigestRef(image)
			if err != nil {
				return usageError{err}
			}
			want := provenance.Expect{Commit: commit}
			if keyFile != "" {
				data, err := os.ReadFile(keyFile)
				if err != nil {
					return usagef("reading --key: %w", err)
				}
				if want.Key, err = provenance.ParsePublicKey(data); err != nil {
					return usageError{err}
				}
			}
			c, err := rf.client(a)
			if err != nil {
				return err
			}
			st, err := provenance.Verify(cmd.Context(), c, ref, want)
			if err != nil {
				return err
			}
			p := st.Predicate
			commit := ""
			if deps := p.BuildDefinition.ResolvedDependencies; len(deps) > 0 {
				commit = deps[0].Digest["gitCommit"]
			}
			signed := "signature not checked (no --key)"
			if want.Key != nil {
				signed = "signature verified"
			}
			fmt.Fprintf(a.stdout, "verified %s\n  source  %s\n  builder %s\n  built   %s\n  %s\n", ref, commit, p.RunDetails.Builder.ID, p.RunDetails.Metadata.FinishedOn.Format("2006-01-02 15:04 UTC"), signed)
			return nil
		},
	}
	f := verify.Flags()
	f.StringVar(&image, "image", "", "the digest: REPO@sha256:DIGEST (required)")
	f.StringVar(&keyFile, "key", "", "PEM public key the provenance must be signed with")
	f.StringVar(&commit, "commit", "", "the source commit it must name")
	rf.add(f)
	_ = verify.MarkFlagRequired("image")
	cmd.AddCommand(verify)
	return cmd
}
