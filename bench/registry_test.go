package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
)

// row is one line of the printed table.
type row struct {
	scenario, tool string
	wall           time.Duration
	requests       int
	uploaded       int64
	note           string
}

type table struct {
	mu   sync.Mutex
	rows []row
}

func (t *table) add(r row) {
	t.mu.Lock()
	t.rows = append(t.rows, r)
	t.mu.Unlock()
}

// print writes the table with each peer's ratio to tagflow in its scenario.
func (t *table) print() {
	fmt.Printf("\n%-34s %-8s %10s %9s %12s %10s  %s\n", "scenario", "tool", "wall", "requests", "uploaded", "wall/tf", "note")
	base := map[string]time.Duration{}
	for _, r := range t.rows {
		if r.tool == "tagflow" {
			base[r.scenario] = r.wall
		}
	}
	for _, r := range t.rows {
		ratio := "-"
		if b := base[r.scenario]; b > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(r.wall)/float64(b))
		}
		fmt.Printf("%-34s %-8s %10s %9d %12s %10s  %s\n", r.scenario, r.tool, r.wall.Round(time.Millisecond), r.requests, bytesStr(r.uploaded), ratio, r.note)
	}
	fmt.Println()
}

func bytesStr(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// tools finds the peers and builds tagflow.
type tools struct{ tagflow, crane, skopeo string }

func findTools(b *testing.B) tools {
	home, _ := os.UserHomeDir()
	crane := os.Getenv("TAGFLOW_CRANE")
	if crane == "" {
		crane = filepath.Join(home, ".cache/tagflow-tools/crane-v0.22.1/crane")
	}
	skopeo := os.Getenv("TAGFLOW_SKOPEO")
	if skopeo == "" {
		skopeo = "/usr/bin/skopeo"
	}
	bin := filepath.Join(b.TempDir(), "tagflow")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/tagflow").CombinedOutput(); err != nil {
		b.Fatalf("building tagflow: %v\n%s", err, out)
	}
	return tools{
		tagflow: bin,
		crane:   registrytest.Require(b, crane, "scripts/tools.sh builds crane"),
		skopeo:  registrytest.Require(b, skopeo, "scripts/tools.sh installs skopeo"),
	}
}

func run(b *testing.B, env []string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// measure runs f reps times through the proxy and keeps the median wall time
// and the first run's counts (the cold one: later runs may find blobs the
// first left in the registry).
func measure(p *registrytest.Proxy, reps int, f func(i int)) (time.Duration, int, int64) {
	var walls []time.Duration
	var reqs int
	var up int64
	for i := range reps {
		p.Reset()
		start := time.Now()
		f(i)
		walls = append(walls, time.Since(start))
		if i == 0 {
			reqs, up = len(p.Requests()), p.Uploaded()
		}
	}
	slices.Sort(walls)
	return walls[len(walls)/2], reqs, up
}

// BenchmarkRegistry compares push, re-push, promotion retag and retention
// with crane and skopeo on distribution 2.8 (and retention on v3 too).
// Sizes: TAGFLOW_BENCH_LAYERS, _LAYER_MB, _TAGS, _DIGESTS, _REPS.
func BenchmarkRegistry(b *testing.B) {
	tl := findTools(b)
	reps := envInt("TAGFLOW_BENCH_REPS", 3)
	layers, layerMB := envInt("TAGFLOW_BENCH_LAYERS", 5), envInt("TAGFLOW_BENCH_LAYER_MB", 10)
	var tab table

	reg := registrytest.Start(b, registrytest.V2, registrytest.Options{})
	proxy := registrytest.NewProxy(b, reg.URL())
	host := proxy.Host

	// The image every tool pushes: a docker-archive, as docker save writes it.
	img, err := random.Image(int64(layerMB)<<20, int64(layers))
	if err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(b.TempDir(), "image.tar")
	if err := tarball.WriteToFile(archive, mustRef(b, "bench/image:latest"), img); err != nil {
		b.Fatal(err)
	}
	digest, _ := img.Digest()

	// tagflow plans from a git checkout: a release of VERSION 1.0.0 → 3 tags.
	g := gittest.New(b)
	head := g.Commit("feat: bench", map[string]string{"VERSION": "1.0.0\n"})
	cfg := filepath.Join(b.TempDir(), "tagflow.yaml")
	os.WriteFile(cfg, []byte("registry: "+host+"\n"), 0o644)
	tf := func(args ...string) { run(b, []string{"CI=true"}, tl.tagflow, append(args, "--config", cfg)...) }
	push := func(svc string) {
		tf("push", "--image", archive, "--service", svc, "--env", "dev", "--release", "--source", g.Dir)
	}
	threeTags := []string{"v1.0.0", "env-dev", head[:7]}

	scenario := fmt.Sprintf("push %d×%d MiB, 3 tags", layers, layerMB)
	w, r, u := measure(proxy, reps, func(i int) { push(fmt.Sprintf("tf%d", i)) })
	tab.add(row{scenario, "tagflow", w, r, u, "digest kept"})
	w, r, u = measure(proxy, reps, func(i int) {
		ref := fmt.Sprintf("%s/cr%d:%s", host, i, threeTags[0])
		run(b, nil, tl.crane, "push", archive, ref)
		for _, t := range threeTags[1:] {
			run(b, nil, tl.crane, "tag", ref, t)
		}
	})
	tab.add(row{scenario, "crane", w, r, u, "push + 2 × tag"})
	w, r, u = measure(proxy, reps, func(i int) {
		for _, t := range threeTags {
			run(b, []string{"HOME=" + b.TempDir()}, tl.skopeo, "copy", "-q", "--dest-tls-verify=false", "docker-archive:"+archive, fmt.Sprintf("docker://%s/sk%d:%s", host, i, t))
		}
	})
	skDigest, _ := crane(b, tl, "digest", host+"/sk0:"+threeTags[0])
	note := "3 × copy"
	if skDigest != digest.String() {
		note += "; digest changed (layers recompressed)"
	}
	tab.add(row{scenario, "skopeo", w, r, u, note})

	scenario = "re-push (everything present)"
	w, r, u = measure(proxy, reps, func(int) { push("tf0") })
	tab.add(row{scenario, "tagflow", w, r, u, ""})
	w, r, u = measure(proxy, reps, func(int) {
		ref := host + "/cr0:" + threeTags[0]
		run(b, nil, tl.crane, "push", archive, ref)
		for _, t := range threeTags[1:] {
			run(b, nil, tl.crane, "tag", ref, t)
		}
	})
	tab.add(row{scenario, "crane", w, r, u, ""})
	w, r, u = measure(proxy, reps, func(int) {
		for _, t := range threeTags {
			run(b, nil, tl.skopeo, "copy", "-q", "--dest-tls-verify=false", "docker-archive:"+archive, fmt.Sprintf("docker://%s/sk0:%s", host, t))
		}
	})
	tab.add(row{scenario, "skopeo", w, r, u, ""})

	// Promotion: move env-prod between two digests, so every run really moves it.
	other, _ := random.Image(1024, 1)
	otherDigest := pushSmall(b, host+"/tf0", other, "0000000")
	run(b, nil, tl.crane, "tag", host+"/cr0@"+digest.String(), "keep") // make sure cr0 has both
	pushSmall(b, host+"/cr0", other, "0000000")
	targets := []string{otherDigest, digest.String()}
	scenario = "promotion retag (1 tag)"
	w, r, u = measure(proxy, reps, func(i int) {
		tf("tag", "--image", host+"/tf0@"+targets[i%2], "--tag", "env-prod")
	})
	tab.add(row{scenario, "tagflow", w, r, u, "checks immutability"})
	w, r, u = measure(proxy, reps, func(i int) {
		run(b, nil, tl.crane, "tag", host+"/cr0@"+targets[i%2], "env-prod")
	})
	tab.add(row{scenario, "crane", w, r, u, ""})

	for _, kind := range []registrytest.Kind{registrytest.V2, registrytest.V3} {
		retention(b, tl, kind, &tab)
	}
	tab.print()
}

func crane(b *testing.B, tl tools, args ...string) (string, error) {
	out, err := exec.Command(tl.crane, args...).Output()
	return strings.TrimSpace(string(out)), err
}

func pushSmall(b *testing.B, repo string, img v1.Image, tag string) string {
	ref := mustRef(b, repo+":"+tag)
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// retention fills two repositories with the same digests and tags, then
// prunes one with tagflow and the other with a sequential crane delete loop
// over the same doomed digests.
func retention(b *testing.B, tl tools, kind registrytest.Kind, tab *table) {
	nTags, nDigests := envInt("TAGFLOW_BENCH_TAGS", 10000), envInt("TAGFLOW_BENCH_DIGESTS", 2000)
	keep := 10
	reg := registrytest.Start(b, kind, registrytest.Options{})
	proxy := registrytest.NewProxy(b, reg.URL())
	host := proxy.Host
	perDigest := nTags / nDigests

	// Fill: each digest a tiny image created a minute after the previous one,
	// with its SHA-like tag and build tags up to the tag count.
	fill := func(repo string) []string {
		digests := make([]string, nDigests)
		g, _ := errgroup.WithContext(context.Background())
		g.SetLimit(16)
		for i := range nDigests {
			g.Go(func() error {
				img, err := random.Image(64, 1)
				if err != nil {
					return err
				}
				cf, _ := img.ConfigFile()
				cf = cf.DeepCopy()
				cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)}
				img, _ = mutate.ConfigFile(img, cf)
				first, err := name.ParseReference(fmt.Sprintf("%s/%s:%07x", host, repo, i))
				if err != nil {
					return err
				}
				if err := remote.Write(first, img); err != nil {
					return err
				}
				d, _ := img.Digest()
				digests[i] = d.String()
				desc, err := remote.Get(first)
				if err != nil {
					return err
				}
				for j := 1; j < perDigest; j++ {
					tag, err := name.NewTag(fmt.Sprintf("%s/%s:build-%d-%d", host, repo, i, j))
					if err != nil {
						return err
					}
					if err := remote.Tag(tag, desc); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return digests
	}
	fill("tf")
	crDigests := fill("cr")
	doomed := crDigests[:nDigests-keep] // the oldest: the same set tagflow deletes

	cfg := filepath.Join(b.TempDir(), "tagflow.yaml")
	os.WriteFile(cfg, []byte("registry: "+host+"\n"), 0o644)
	scenario := fmt.Sprintf("retain %s: %d tags/%d digests", shortKind(kind), nTags, nDigests)
	w, r, _ := measure(proxy, 1, func(int) {
		run(b, []string{"CI=true"}, tl.tagflow, "retain", "--config", cfg, "--service", "tf", "--keep", strconv.Itoa(keep), "--apply")
	})
	left, _ := remote.List(mustRef(b, host+"/tf:x").Context())
	tab.add(row{scenario, "tagflow", w, r, 0, fmt.Sprintf("deletes %d digests; %d tags left", len(doomed), len(left))})
	w, r, _ = measure(proxy, 1, func(int) {
		for _, d := range doomed {
			run(b, nil, tl.crane, "delete", host+"/cr@"+d)
		}
	})
	tab.add(row{scenario, "crane", w, r, 0, "sequential crane delete loop"})
}

func mustRef(b *testing.B, s string) name.Reference {
	r, err := name.ParseReference(s)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func shortKind(k registrytest.Kind) string {
	if k == registrytest.V2 {
		return "2.8"
	}
	return "v3"
}
