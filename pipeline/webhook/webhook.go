// Package webhook receives a registry's notification events and flags every
// move of an env-* or vX.Y.Z tag that tagflow did not make: a tag pushed
// onto a digest that no tagflow record and no GitOps overlay accounts for.
package webhook

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// EventsType is the media type of distribution's notification envelopes.
const EventsType = "application/vnd.docker.distribution.events.v1+json"

// Event is one registry event, as distribution sends it.
type Event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// Finding is a flagged tag move.
type Finding struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// Receiver is the HTTP handler.
type Receiver struct {
	Deps   promote.Deps
	Secret string        // required in "Authorization: Bearer <secret>"
	Grace  time.Duration // records may trail a tag push; re-check after this before flagging
	Log    *slog.Logger

	flagged  atomic.Int64
	received atomic.Int64
	mu       sync.Mutex
	findings []Finding
	wg       sync.WaitGroup
}

// ServeHTTP routes /events (POST, authenticated) and /metrics.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP tagflow_webhook_events_total Registry events received.\n# TYPE tagflow_webhook_events_total counter\ntagflow_webhook_events_total %d\n", rc.received.Load())
		fmt.Fprintf(w, "# HELP tagflow_unexpected_tag_moves_total env-* and vX.Y.Z tag moves tagflow did not make.\n# TYPE tagflow_unexpected_tag_moves_total counter\ntagflow_unexpected_tag_moves_total %d\n", rc.flagged.Load())
	case "/events":
		rc.events(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (rc *Receiver) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST events here", http.StatusMethodNotAllowed)
		return
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if rc.Secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(rc.Secret)) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var env struct {
		Events []Event `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&env); err != nil {
		http.Error(w, "not a notification envelope: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range env.Events {
		rc.received.Add(1)
		if e.Action != "push" || e.Target.Tag == "" {
			continue
		}
		k := tags.Parse(e.Target.Tag)
		if (k.Kind != tags.Env && k.Kind != tags.Version) || k.Arch != "" {
			continue
		}
		rc.wg.Add(1)
		go rc.judge(context.WithoutCancel(r.Context()), e)
	}
	w.WriteHeader(http.StatusOK)
}

// judge decides about one tag push, once now and once after the grace period.
func (rc *Receiver) judge(ctx context.Context, e Event) {
	defer rc.wg.Done()
	reason, err := rc.unexplained(ctx, e)
	if err == nil && reason != "" && rc.Grace > 0 {
		time.Sleep(rc.Grace)
		reason, err = rc.unexplained(ctx, e)
	}
	log := rc.logger()
	if err != nil {
		log.Warn("could not judge a tag move", "repository", e.Target.Repository, "tag", e.Target.Tag, "digest", e.Target.Digest, "error", err)
		return
	}
	if reason == "" {
		return
	}
	rc.flagged.Add(1)
	f := Finding{Repository: e.Target.Repository, Tag: e.Target.Tag, Digest: e.Target.Digest, Reason: reason, At: time.Now().UTC()}
	rc.mu.Lock()
	rc.findings = append(rc.findings, f)
	rc.mu.Unlock()
	log.Error("unexpected tag move: not made by tagflow", "repository", f.Repository, "tag", f.Tag, "digest", f.Digest, "reason", f.Reason)
}

func (rc *Receiver) logger() *slog.Logger {
	if rc.Log == nil {
		return slog.Default()
	}
	return rc.Log
}

// Wait waits for the judgements under way (tests, shutdown).
func (rc *Receiver) Wait() { rc.wg.Wait() }

// Findings are the flagged moves so far.
func (rc *Receiver) Findings() []Finding {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.findings)
}

// unexplained returns why a tag push is not tagflow's, or "" when it is.
func (rc *Receiver) unexplained(ctx context.Context, e Event) (string, error) {
	d := rc.Deps
	reg, _, _ := strings.Cut(d.Config.Registry, "/")
	ref, err := name.NewDigest(reg+"/"+e.Target.Repository+"@"+e.Target.Digest, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("event for %s@%s: %w", e.Target.Repository, e.Target.Digest, err)
	}
	tag := e.Target.Tag
	rec, err := promote.Record(ctx, d.Registry, ref)
	if err != nil {
		return "", err
	}
	if tags.Parse(tag).Kind == tags.Version {
		if rec != nil && slices.Contains(rec.Tags, tag) {
			return "", nil
		}
		return fmt.Sprintf("release tag %s was pushed onto %s, which no tagflow release of %s produced", tag, e.Target.Digest, tag), nil
	}
	env := strings.TrimPrefix(tag, tags.EnvPrefix)
	if rec != nil && rec.Env == env {
		return "", nil
	}
	moves, err := d.Registry.Attached(ctx, ref, promote.MoveType)
	if err != nil {
		return "", err
	}
	for _, m := range moves {
		var mv promote.Move
		if json.Unmarshal(m, &mv) == nil && mv.Env == env {
			return "", nil
		}
	}
	if d.GitOps != nil {
		service := strings.TrimPrefix(e.Target.Repository, namespace(d.Config.Registry))
		deployed, err := promote.Deployed(ctx, d, service, env)
		if err == nil && deployed == e.Target.Digest {
			return "", nil
		}
		if err != nil {
			rc.logger().Debug("overlay not readable", "service", service, "env", env, "error", err)
		}
	}
	return fmt.Sprintf("%s moved to %s without a tagflow promotion, rollback or release for %s, and the %s overlay does not deploy it", tag, e.Target.Digest, env, env), nil
}

// namespace is the repository prefix under the registry host ("acme/" for ghcr.io/acme).
func namespace(registry string) string {
	_, ns, ok := strings.Cut(registry, "/")
	if !ok || ns == "" {
		return ""
	}
	return ns + "/"
}
