package registry

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrPlainHTTP reports a request that would go over plain HTTP to a registry
// that is neither on loopback nor explicitly allowed.
var ErrPlainHTTP = errors.New("plain HTTP is only used for loopback registries or ones allowed explicitly")

// guard refuses plain HTTP except to loopback hosts or allowed ones.
// go-containerregistry falls back to http for private-range addresses too; a
// registry on the office network is still a network, so we do not.
type guard struct {
	inner   http.RoundTripper
	allowed []string // host[:port] allowed over http
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !isLoopback(req.URL.Hostname()) && !slices.Contains(g.allowed, req.URL.Host) && !slices.Contains(g.allowed, req.URL.Hostname()) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), ErrPlainHTTP)
	}
	return g.inner.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// retry retries throttled and failing requests a bounded number of times,
// waiting as long as Retry-After asks (within maxWait) or backing off
// exponentially with jitter. Requests whose body cannot be replayed are not
// retried.
type retry struct {
	inner    http.RoundTripper
	attempts int           // total tries, at least 1
	base     time.Duration // first backoff
	maxWait  time.Duration // longest single wait; a longer Retry-After ends the retries
	sleep    func(req *http.Request, d time.Duration) error
}

// retryable statuses: throttling and the server errors that pass.
var retryable = []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError, http.StatusRequestTimeout}

func (r *retry) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		res, err := r.inner.RoundTrip(req)
		if attempt >= r.attempts || !r.shouldRetry(res, err) {
			return res, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return res, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return res, err
			}
			req.Body = body
		}
		wait := r.backoff(attempt)
		if res != nil {
			if d, ok := retryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
				wait = d
			}
			if wait > r.maxWait {
				return res, err // the registry asks for longer than we wait: report it
			}
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
		}
		if serr := r.sleep(req, wait); serr != nil {
			return nil, serr
		}
	}
}

func (r *retry) shouldRetry(res *http.Response, err error) bool {
	if err != nil {
		// Connection refused or reset: the registry restarting, a proxy blip.
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || isTimeout(err)
	}
	return slices.Contains(retryable, res.StatusCode)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (r *retry) backoff(attempt int) time.Duration {
	d := r.base << (attempt - 1)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	return min(d+jitter, r.maxWait)
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(req *http.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-req.Context().Done():
		return req.Context().Err()
	}
}
