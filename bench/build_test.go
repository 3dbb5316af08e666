package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tagflow/tagflow/internal/trivytest"
	"github.com/tagflow/tagflow/pipeline/build"
	"github.com/tagflow/tagflow/pipeline/scan"
)

// BenchmarkBuildScan times the daemonless builder on examples/echo-server —
// cold (an empty Go build cache) and unchanged (everything cached) — and a
// Trivy scan of the result against an offline DB.
func BenchmarkBuildScan(b *testing.B) {
	ctx := context.Background()
	o := build.Options{Source: "../examples/echo-server", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		LDFlags: []string{"-X main.version=v1.4.2"}}
	cold := b.TempDir()
	o.Env = []string{"GOCACHE=" + cold}
	var tab table
	timeIt := func(scenario string, f func()) {
		start := time.Now()
		f()
		tab.add(row{scenario: scenario, tool: "tagflow", wall: time.Since(start)})
	}
	var out string
	timeIt("build echo-server, cold Go cache", func() {
		a, err := build.Build(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		out = filepath.Join(b.TempDir(), "oci")
		if err := build.Write(out, a); err != nil {
			b.Fatal(err)
		}
	})
	timeIt("rebuild echo-server, unchanged", func() {
		a, err := build.Build(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		if err := build.Write(filepath.Join(b.TempDir(), "oci"), a); err != nil {
			b.Fatal(err)
		}
	})
	o.Platforms = []string{"linux/amd64", "linux/arm64"}
	timeIt("build amd64+arm64 index (arm64 cold)", func() {
		if _, err := build.Build(ctx, o); err != nil {
			b.Fatal(err)
		}
	})
	trivy := trivytest.Binary(b)
	cache := b.TempDir()
	trivytest.WriteDB(b, cache, trivytest.GoText, trivytest.DebianOpenSSL)
	for i := range 2 {
		timeIt(fmt.Sprintf("scan echo-server (run %d)", i+1), func() {
			if _, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: out, CacheDir: cache, Offline: true}); err != nil {
				b.Fatal(err)
			}
		})
	}
	os.RemoveAll(cold)
	tab.print()
}
