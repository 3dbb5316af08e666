package registry

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"5":                             5 * time.Second,
		"0":                             0,
		"Mon, 30 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Mon, 30 Nov 2026 11:00:00 GMT": 0, // in the past: go now
	} {
		got, ok := retryAfter(h, now)
		if !ok || got != want {
			t.Errorf("retryAfter(%q) = %s, %v; want %s", h, got, ok, want)
		}
	}
	for _, h := range []string{"", "soon", "-3"} {
		if _, ok := retryAfter(h, now); ok {
			t.Errorf("retryAfter(%q) accepted", h)
		}
	}
}

type scripted struct {
	statuses []int
	calls    int
	bodies   []string
}

func (s *scripted) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		s.bodies = append(s.bodies, string(b))
	}
	st := s.statuses[min(s.calls, len(s.statuses)-1)]
	s.calls++
	return &http.Response{StatusCode: st, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
}

func newRetry(inner http.RoundTripper, attempts int) (*retry, *[]time.Duration) {
	var waits []time.Duration
	return &retry{inner: inner, attempts: attempts, base: 100 * time.Millisecond, maxWait: time.Second,
		sleep: func(_ *http.Request, d time.Duration) error { waits = append(waits, d); return nil }}, &waits
}

func TestRetryReplaysBodies(t *testing.T) {
	s := &scripted{statuses: []int{503, 502, 201}}
	r, waits := newRetry(s, 5)
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1/v2/x/manifests/t", strings.NewReader("manifest"))
	res, err := r.RoundTrip(req)
	if err != nil || res.StatusCode != 201 || s.calls != 3 {
		t.Fatalf("RoundTrip = %v, %v after %d calls; want 201 after 3", res, err, s.calls)
	}
	for i, b := range s.bodies {
		if b != "manifest" {
			t.Errorf("attempt %d sent body %q", i+1, b)
		}
	}
	if len(*waits) != 2 || (*waits)[1] <= (*waits)[0]-(*waits)[0]/5 {
		t.Errorf("waits = %v, want two growing backoffs", *waits)
	}
}

func TestRetryBounded(t *testing.T) {
	s := &scripted{statuses: []int{503}}
	r, _ := newRetry(s, 3)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v2/", nil)
	res, err := r.RoundTrip(req)
	if err != nil || res.StatusCode != 503 || s.calls != 3 {
		t.Errorf("RoundTrip = %v, %v after %d calls; want the 503 after 3", res, err, s.calls)
	}
}

func TestRetryDoesNotRetryClientErrors(t *testing.T) {
	s := &scripted{statuses: []int{401, 200}}
	r, _ := newRetry(s, 3)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v2/", nil)
	if res, _ := r.RoundTrip(req); res.StatusCode != 401 || s.calls != 1 {
		t.Errorf("401 was retried: %d calls", s.calls)
	}
}

func TestRetryUnreplayableBody(t *testing.T) {
	s := &scripted{statuses: []int{503, 201}}
	r, _ := newRetry(s, 3)
	req, _ := http.NewRequest(http.MethodPatch, "http://127.0.0.1/v2/x/blobs/uploads/u", io.NopCloser(strings.NewReader("stream")))
	req.GetBody = nil
	if res, _ := r.RoundTrip(req); res.StatusCode != 503 || s.calls != 1 {
		t.Errorf("a streamed body was retried (%d calls), it would have been sent empty", s.calls)
	}
}

func TestGuard(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	g := &guard{inner: s, allowed: []string{"registry.lan:5000"}}
	for url, ok := range map[string]bool{
		"http://127.0.0.1:5000/v2/":    true,
		"http://localhost:5000/v2/":    true,
		"http://[::1]:5000/v2/":        true,
		"https://10.0.0.5/v2/":         true,
		"http://registry.lan:5000/v2/": true,
		"http://10.0.0.5:5000/v2/":     false,
		"http://user:pw@ghcr.io/v2/":   false,
		"http://registry.lan:5001/v2/": false,
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		_, err := g.RoundTrip(req)
		if (err == nil) != ok || (!ok && !errors.Is(err, ErrPlainHTTP)) {
			t.Errorf("guard(%s) = %v, want allowed %v", url, err, ok)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("guard error %q shows the URL's password", err)
		}
	}
}
