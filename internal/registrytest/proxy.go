package registrytest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Proxy sits between a client and a registry on loopback, counting requests
// and the bytes they upload, and optionally answering some itself.
type Proxy struct {
	Host string // 127.0.0.1:port of the proxy (plain HTTP)

	mu       sync.Mutex
	requests []string // "METHOD class", in order
	uploaded int64    // request body bytes of blob uploads
	fault    func(r *http.Request) (status int, header http.Header, ok bool)
}

// NewProxy forwards to the registry at target (its base URL).
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{TLSClientConfig: insecureTLS(), MaxIdleConnsPerHost: 64}
	// Location headers name the registry; rewrite them so clients stay on the proxy.
	p := &Proxy{}
	rp.ModifyResponse = func(res *http.Response) error {
		if loc := res.Header.Get("Location"); loc != "" {
			res.Header.Set("Location", strings.Replace(loc, u.Scheme+"://"+u.Host, "http://"+p.Host, 1))
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+Class(r.URL.Path))
		fault := p.fault
		p.mu.Unlock()
		if fault != nil {
			if status, h, ok := fault(r); ok {
				io.Copy(io.Discard, r.Body)
				for k, v := range h {
					w.Header()[k] = v
				}
				w.WriteHeader(status)
				return
			}
		}
		if Class(r.URL.Path) == "blob-upload" && r.Body != nil {
			r.Body = &counter{ReadCloser: r.Body, p: p}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

type counter struct {
	io.ReadCloser
	p *Proxy
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.p.mu.Lock()
	c.p.uploaded += int64(n)
	c.p.mu.Unlock()
	return n, err
}

// Fault answers requests for which f returns ok with status and header,
// without forwarding them. Nil removes the fault.
func (p *Proxy) Fault(f func(r *http.Request) (status int, header http.Header, ok bool)) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Reset clears the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.requests, p.uploaded = nil, 0
	p.mu.Unlock()
}

// Requests returns "METHOD class" for each request since the last Reset.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Uploaded is the number of blob bytes clients sent since the last Reset.
func (p *Proxy) Uploaded() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.uploaded
}

// Summary counts requests by "METHOD class", sorted, for messages and tables.
func (p *Proxy) Summary() string {
	counts := map[string]int{}
	for _, r := range p.Requests() {
		counts[r]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, counts[k])
	}
	return strings.TrimSpace(b.String())
}

var (
	uploadRE   = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
	blobRE     = regexp.MustCompile(`^/v2/.+/blobs/sha256:`)
	manifestRE = regexp.MustCompile(`^/v2/.+/manifests/`)
	tagsRE     = regexp.MustCompile(`^/v2/.+/tags/list$`)
	refsRE     = regexp.MustCompile(`^/v2/.+/referrers/`)
)

// Class names the kind of registry API call a path is.
func Class(path string) string {
	switch {
	case path == "/v2/" || path == "/v2":
		return "ping"
	case uploadRE.MatchString(path):
		return "blob-upload"
	case blobRE.MatchString(path):
		return "blob"
	case manifestRE.MatchString(path):
		return "manifest"
	case tagsRE.MatchString(path):
		return "tags"
	case refsRE.MatchString(path):
		return "referrers"
	}
	return "other"
}

func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test helper talking to its own self-signed registry
}
