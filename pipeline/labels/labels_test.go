package labels_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tagflow/tagflow/pipeline/labels"
)

func TestFor(t *testing.T) {
	extra := map[string]string{"org.example.team": "media", labels.Revision: "forged"}
	got := labels.For(labels.Input{
		Commit:  "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
		Source:  "https://github.com/acme/svc",
		Version: "v1.4.2",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
		Title:   "svc",
		Extra:   extra,
	})
	want := map[string]string{
		labels.Revision:    "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
		labels.Source:      "https://github.com/acme/svc",
		labels.Version:     "v1.4.2",
		labels.Created:     "2026-01-02T02:04:05Z",
		labels.Title:       "svc",
		"org.example.team": "media",
	}
	if !maps.Equal(got, want) {
		t.Errorf("For = %v, want %v", got, want)
	}
	if extra[labels.Revision] != "forged" {
		t.Error("For modified the caller's map")
	}
}

func TestForOmitsEmpty(t *testing.T) {
	got := labels.For(labels.Input{Commit: "abc", Extra: map[string]string{labels.Version: "v9.9.9"}})
	if _, ok := got[labels.Version]; ok {
		t.Errorf("a non-release kept a configured version label: %v", got)
	}
	if _, ok := got[labels.Created]; ok || len(got) != 1 {
		t.Errorf("For = %v, want only the revision", got)
	}
}

func TestPairs(t *testing.T) {
	kv, err := labels.Pairs("labels", []string{"a=1", "org.opencontainers.image.revision=abc=def"})
	if err != nil || len(kv) != 2 || kv[1][0] != "org.opencontainers.image.revision" || kv[1][1] != "abc=def" {
		t.Errorf("Pairs = %v, %v", kv, err)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := labels.Pairs("build-args", []string{bad}); err == nil || !strings.Contains(err.Error(), "build-args") {
			t.Errorf("Pairs(%q) = %v, want an error naming the argument", bad, err)
		}
	}
}
