package gittest

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Server serves bare repositories over git's smart HTTP protocol with Debian
// git's git-http-backend, behind basic auth, on loopback.
type Server struct {
	URL  string // http://127.0.0.1:port
	Root string // directory of bare repositories
	User string
	Pass string

	mu     sync.Mutex
	before func(r *http.Request) // runs before each request is served
	pushes int
}

const httpBackend = "/usr/lib/git-core/git-http-backend"

// NewServer starts a server; it stops when the test ends.
func NewServer(t testing.TB, user, pass string) *Server {
	t.Helper()
	if _, err := os.Stat(httpBackend); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: install Debian's git", httpBackend)
		}
		t.Skipf("%s is missing", httpBackend)
	}
	s := &Server{Root: t.TempDir(), User: user, Pass: pass}
	backend := &cgi.Handler{
		Path: httpBackend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user, // only authenticated requests reach the backend; receive-pack wants a user
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.Root,
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		before := s.before
		if r.URL.Query().Get("service") == "git-receive-pack" || filepath.Base(r.URL.Path) == "git-receive-pack" {
			s.pushes++
		}
		s.mu.Unlock()
		if before != nil {
			before(r)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Before sets a hook that runs before each request is served (nil removes it).
func (s *Server) Before(f func(r *http.Request)) {
	s.mu.Lock()
	s.before = f
	s.mu.Unlock()
}

// Init creates a bare repository name.git whose main branch holds the files
// of seed (a work tree made with New), and returns its clone URL.
func (s *Server) Init(t testing.TB, name string, seed *Repo) string {
	t.Helper()
	bare := filepath.Join(s.Root, name+".git")
	for _, args := range [][]string{
		{"init", "--bare", "--initial-branch=main", bare},
		{"-C", bare, "config", "http.receivepack", "true"},
		{"-C", seed.Dir, "push", bare, "HEAD:refs/heads/main"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+s.Root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return s.URL + "/" + name + ".git"
}

// Git runs git against the bare repository name.git (for assertions).
func (s *Server) Git(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", filepath.Join(s.Root, name+".git")}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+s.Root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}
