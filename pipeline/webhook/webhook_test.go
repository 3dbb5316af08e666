package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
	"github.com/tagflow/tagflow/pipeline/webhook"
)

const secret = "hook-secret-value"

func TestReceiverFlagsForeignMoves(t *testing.T) {
	ctx := context.Background()
	rc := &webhook.Receiver{Secret: secret, Grace: 1500 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{
		Notify: hook.URL + "/events", NotifyHeader: map[string]string{"Authorization": "Bearer " + secret},
	})

	srv := gittest.NewServer(t, "tagflow", "git-token")
	seed := gittest.New(t)
	files := map[string]string{}
	for _, env := range []string{"dev", "staging", "prod"} {
		files["apps/echo/overlays/"+env+"/values.yaml"] = "image:\n  tag: none\n  digest: none\n"
	}
	seed.Commit("seed", files)
	url := srv.Init(t, "gitops", seed)
	cfg, err := config.Parse("t.yaml", []byte("registry: "+reg.Host+"/acme\ngitops:\n  repo: "+url+"\n  keys: {image.tag: tag, image.digest: digest}\n  direct: [dev, staging, prod]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := registry.New()
	rc.Deps = promote.Deps{Config: cfg, Registry: c, GitOps: func(env string) (gitops.Target, error) {
		return gitops.NewTarget(cfg, env, "", "", "git-token", nil)
	}}
	repo, _ := registry.ParseRepository(reg.Host + "/acme/echo")

	// What tagflow does: a release to dev (record after the push), then a promotion.
	img, _ := random.Image(1024, 1)
	v, _ := tagsInput("1.0.0")
	set, _ := tags.For(tags.Input{Version: v, Env: "dev", Commit: "abcdef0123456789abcdef0123456789abcdef01"})
	pushed, err := c.Push(ctx, registry.Artifact{Image: img}, repo, set)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(promote.Metadata{Service: "echo", Env: "dev", Commit: "abcdef0123456789abcdef0123456789abcdef01", Digest: pushed.Digest, Tags: pushed.Tags, Scan: promote.Scan{Passed: true}, Created: time.Now()})
	if _, err := c.Attach(ctx, repo.Digest(pushed.Digest), promote.RecordType, rec, nil); err != nil {
		t.Fatal(err)
	}
	target, _ := rc.Deps.GitOps("dev")
	if _, err := gitops.Open(ctx, target, gitops.Deployment{Service: "echo", Env: "dev", Image: gitops.Image{Tag: "v1.0.0", Digest: pushed.Digest}}); err != nil {
		t.Fatal(err)
	}
	if _, err := promote.Promote(ctx, rc.Deps, promote.Request{Service: "echo", From: "dev", To: "staging"}); err != nil {
		t.Fatal(err)
	}

	// What someone else does: move env-prod by hand, push a release tag by hand.
	desc, _ := remote.Get(repo.Digest(pushed.Digest))
	if err := remote.Tag(repo.Tag("env-prod"), desc); err != nil {
		t.Fatal(err)
	}
	stray, _ := random.Image(512, 1)
	if err := remote.Write(repo.Tag("v9.9.9"), stray); err != nil {
		t.Fatal(err)
	}

	// Notifications are delivered asynchronously: wait for the two findings,
	// then for every judgement to settle.
	deadline := time.Now().Add(20 * time.Second)
	for len(rc.Findings()) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	rc.Wait()
	got := map[string]string{}
	for _, f := range rc.Findings() {
		got[f.Tag] = f.Reason
	}
	if len(got) != 2 || !strings.Contains(got["env-prod"], "without a tagflow promotion") || !strings.Contains(got["v9.9.9"], "no tagflow release") {
		t.Fatalf("findings = %v; want exactly env-prod and v9.9.9 (tagflow's own moves of env-dev, env-staging and v1.0.0 are not findings)", got)
	}

	res, err := http.Get(hook.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "tagflow_unexpected_tag_moves_total 2\n") {
		t.Errorf("metrics:\n%s", body)
	}

	req, _ := http.NewRequest(http.MethodPost, hook.URL+"/events", strings.NewReader(`{"events":[]}`))
	req.Header.Set("Authorization", "Bearer not-the-secret")
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %v %v", res.StatusCode, err)
	}
}
