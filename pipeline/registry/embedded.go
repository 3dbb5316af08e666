package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Embedded is a registry tagflow serves itself on loopback, for a first run
// without any infrastructure. Blobs and manifests persist under a directory,
// so images survive from one command to the next.
type Embedded struct {
	Host string // 127.0.0.1:port
	srv  *http.Server
	done chan struct{}
}

// Serve starts an embedded registry storing under dir, on 127.0.0.1 and a
// free port.
func Serve(dir string) (*Embedded, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	inner := registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(dir, "blobs"))),
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
	h := &persisted{inner: inner, dir: filepath.Join(dir, "manifests")}
	if err := h.replay(); err != nil {
		return nil, fmt.Errorf("embedded registry: reading %s: %w", h.dir, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	e := &Embedded{Host: l.Addr().String(), srv: &http.Server{Handler: h}, done: make(chan struct{})}
	go func() { defer close(e.done); e.srv.Serve(l) }()
	return e, nil
}

// Close stops the registry; what it stored stays on disk.
func (e *Embedded) Close() error {
	err := e.srv.Close()
	<-e.done
	return err
}

// persisted keeps go-containerregistry's in-memory manifests on disk: every
// manifest written or deleted through it is mirrored to a file, and all are
// replayed into the registry when it starts.
type persisted struct {
	inner http.Handler
	dir   string
	mu    sync.Mutex
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

type stored struct {
	MediaType string `json:"media_type"`
	Body      []byte `json:"body"`
}

func (p *persisted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := manifestPath.FindStringSubmatch(r.URL.Path)
	if m == nil || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		p.inner.ServeHTTP(w, r)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var body []byte
	if r.Method == http.MethodPut {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, 16<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := httptest.NewRecorder()
	p.inner.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
	if rec.Code >= 300 {
		return
	}
	repo, ref := m[1], m[2]
	file := p.file(repo, ref)
	if r.Method == http.MethodPut {
		data, _ := json.Marshal(stored{MediaType: r.Header.Get("Content-Type"), Body: body})
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, data, 0o644)
		return
	}
	os.Remove(file)
}

func (p *persisted) file(repo, ref string) string {
	return filepath.Join(p.dir, url.PathEscape(repo), url.PathEscape(ref)+".json")
}

// replay puts every stored manifest back: digests first, then tags.
func (p *persisted) replay() error {
	repos, err := os.ReadDir(p.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, rd := range repos {
		repo, err := url.PathUnescape(rd.Name())
		if err != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(p.dir, rd.Name()))
		if err != nil {
			return err
		}
		var refs []string
		for _, f := range files {
			if ref, err := url.PathUnescape(strings.TrimSuffix(f.Name(), ".json")); err == nil {
				refs = append(refs, ref)
			}
		}
		sort.SliceStable(refs, func(i, j int) bool {
			return strings.HasPrefix(refs[i], "sha256:") && !strings.HasPrefix(refs[j], "sha256:")
		})
		for _, ref := range refs {
			data, err := os.ReadFile(p.file(repo, ref))
			if err != nil {
				return err
			}
			var s stored
			if err := json.Unmarshal(data, &s); err != nil {
				return fmt.Errorf("%s: %w", p.file(repo, ref), err)
			}
			req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, bytes.NewReader(s.Body))
			req.Header.Set("Content-Type", s.MediaType)
			rec := httptest.NewRecorder()
			p.inner.ServeHTTP(rec, req)
			if rec.Code >= 300 {
				return fmt.Errorf("restoring %s:%s: HTTP %d %s", repo, ref, rec.Code, rec.Body.String())
			}
		}
	}
	return nil
}
