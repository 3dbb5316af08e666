// Package registry talks to OCI registries for tagflow: push an image with its
// whole tag set (blobs once, a manifest per tag), move tags by copying a
// manifest (never its blobs), resolve and verify tags, and prune old digests
// without touching what an environment runs. It is built on
// go-containerregistry.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors callers branch on.
var (
	ErrNotFound     = errors.New("not found in the registry")
	ErrUnauthorized = errors.New("registry refused the credentials")
)

// ImmutableError reports an attempt to move an immutable tag (a version or
// SHA tag) to a different digest.
type ImmutableError struct {
	Ref     string // repo:tag
	Current string // the digest it points at
	Want    string // the digest it was asked to point at
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("tag %s is immutable: it points at %s, refusing to move it to %s", e.Ref, e.Current, e.Want)
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	auth      authn.Authenticator
	keychain  authn.Keychain
	caFile    string
	insecure  []string
	attempts  int
	baseWait  time.Duration
	maxWait   time.Duration
	transport http.RoundTripper
	jobs      int
	progress  func(done, total int64)
	userAgent string
}

// WithBasicAuth uses a username and password (or token) for every registry.
func WithBasicAuth(username, password string) Option {
	return func(o *options) error {
		if username == "" || password == "" {
			return errors.New("registry credentials need both a username and a password")
		}
		o.auth = &authn.Basic{Username: username, Password: password}
		return nil
	}
}

// WithKeychain resolves credentials per registry (default: Docker config and
// credential helpers, authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error { o.keychain = k; return nil }
}

// WithCAFile trusts the PEM certificates in path besides the system roots.
func WithCAFile(path string) Option {
	return func(o *options) error { o.caFile = path; return nil }
}

// WithInsecure allows plain HTTP to these hosts (host or host:port). Loopback
// registries are always allowed.
func WithInsecure(hosts ...string) Option {
	return func(o *options) error { o.insecure = append(o.insecure, hosts...); return nil }
}

// WithRetry sets how often a throttled or failing request is tried in all
// (at least 1) and the longest single wait; a Retry-After longer than that
// ends the retries with the registry's answer.
func WithRetry(attempts int, maxWait time.Duration) Option {
	return func(o *options) error {
		if attempts < 1 || maxWait < 0 {
			return fmt.Errorf("retry: %d attempts with waits up to %s: want at least 1 attempt and a non-negative wait", attempts, maxWait)
		}
		o.attempts, o.maxWait = attempts, maxWait
		return nil
	}
}

// WithBackoff sets the first wait between tries; later waits double.
func WithBackoff(d time.Duration) Option {
	return func(o *options) error { o.baseWait = d; return nil }
}

// WithTransport sets the HTTP transport under tagflow's own (tests use it to
// count or break requests).
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error { o.transport = t; return nil }
}

// WithJobs sets how many requests run at once.
func WithJobs(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("jobs: %d, want at least 1", n)
		}
		o.jobs = n
		return nil
	}
}

// WithProgress reports bytes uploaded during a push.
func WithProgress(fn func(done, total int64)) Option {
	return func(o *options) error { o.progress = fn; return nil }
}

// Client talks to registries. It is safe for concurrent use and keeps one
// authenticated transport per repository, so a command pings a registry once.
type Client struct {
	o    options
	base http.RoundTripper

	mu    sync.Mutex
	conns map[string]http.RoundTripper // repository+scope → transport
}

// New makes a Client.
func New(opts ...Option) (*Client, error) {
	o := options{attempts: 5, baseWait: 200 * time.Millisecond, maxWait: 30 * time.Second, jobs: 8, userAgent: "tagflow"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring registry client: %w", err)
		}
	}
	if o.auth != nil && o.keychain != nil {
		return nil, errors.New("configuring registry client: give credentials or a keychain, not both")
	}
	if o.auth == nil && o.keychain == nil {
		o.keychain = authn.DefaultKeychain
	}
	base := o.transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.jobs * 2
		if o.caFile != "" {
			pool, err := certPool(o.caFile)
			if err != nil {
				return nil, err
			}
			t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		base = t
	}
	c := &Client{o: o, conns: map[string]http.RoundTripper{}}
	c.base = &retry{
		inner:    &guard{inner: base, allowed: o.insecure},
		attempts: o.attempts, base: o.baseWait, maxWait: o.maxWait, sleep: sleepCtx,
	}
	return c, nil
}

func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading CA bundle %s: no PEM certificates in it", path)
	}
	return pool, nil
}

// scope actions
const (
	scopePull   = "pull"
	scopePush   = "pull,push"
	scopeDelete = "pull,push,delete"
)

// transport returns the authenticated transport for a repository, pinging the
// registry only the first time.
func (c *Client) transport(ctx context.Context, repo name.Repository, actions string, extraScopes ...string) (http.RoundTripper, error) {
	key := repo.String() + "#" + actions + "#" + strings.Join(extraScopes, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.conns[key]; ok {
		return t, nil
	}
	auth := c.o.auth
	if auth == nil {
		var err error
		if auth, err = authn.Resolve(ctx, c.o.keychain, repo); err != nil {
			return nil, fmt.Errorf("finding credentials for %s: %w", repo, err)
		}
	}
	scope := "repository:" + repo.RepositoryStr() + ":" + actions
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, transport.NewUserAgent(c.base, c.o.userAgent), append([]string{scope}, extraScopes...))
	if err != nil {
		return nil, classify(fmt.Sprintf("connecting to %s", repo.RegistryStr()), err)
	}
	c.conns[key] = t
	return t, nil
}

// remote returns go-containerregistry options bound to our transport; its
// own retries are off because ours, underneath, honour Retry-After.
func (c *Client) remote(ctx context.Context, repo name.Repository, actions string, extraScopes ...string) ([]remote.Option, error) {
	t, err := c.transport(ctx, repo, actions, extraScopes...)
	if err != nil {
		return nil, err
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(t),
		remote.WithJobs(c.o.jobs),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}, nil
}

// classify wraps err with what was being done, mapping registry answers to
// the typed errors callers branch on.
func classify(doing string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w (HTTP %d)", doing, ErrUnauthorized, te.StatusCode)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", doing, ErrNotFound)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return fmt.Errorf("%s: %w", doing, ErrNotFound)
			}
		}
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// ParseRepository parses host[/namespace]/service strictly.
func ParseRepository(s string) (name.Repository, error) {
	r, err := name.NewRepository(s, name.StrictValidation)
	if err != nil {
		return name.Repository{}, fmt.Errorf("parsing repository %q: %w", s, err)
	}
	return r, nil
}

// ParseDigestRef parses repo@sha256:… strictly.
func ParseDigestRef(s string) (name.Digest, error) {
	if !strings.Contains(s, "@") {
		return name.Digest{}, fmt.Errorf("parsing %q: want REPOSITORY@sha256:DIGEST", s)
	}
	d, err := name.NewDigest(s, name.StrictValidation)
	if err != nil {
		return name.Digest{}, fmt.Errorf("parsing %q: %w", s, err)
	}
	return d, nil
}
