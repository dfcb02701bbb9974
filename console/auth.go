package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Access: requests on the Unix socket are trusted like the API's. On TCP a
// sign-in with an API key starts a console session: a random token in an
// HttpOnly, SameSite=Strict cookie (Secure with TLS), held in memory and
// bound to the key's id. Every request checks that the key is still valid,
// so revoking it ends its sessions at once. The cookie is read here only:
// the JSON API never looks at it.

const (
	cookieName       = "s0d_console"
	secureCookieName = "__Host-s0d_console" // TLS: a __Host- cookie cannot be set by a subdomain
	sessionLifetime  = 12 * time.Hour
	maxSignins       = 10000
)

type signin struct {
	keyID   string
	expires time.Time
}

// signins are the console sessions, keyed by the token's hash so a lookup
// never compares a secret byte by byte.
type signins struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[[sha256.Size]byte]signin
}

func newSignins(now func() time.Time) *signins {
	return &signins{now: now, m: map[[sha256.Size]byte]signin{}}
}

func (s *signins) start(keyID string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSignins {
		// Expired ones first; if none, the one closest to expiry.
		var oldest [sha256.Size]byte
		var oldestAt time.Time
		for k, v := range s.m {
			if now.After(v.expires) {
				delete(s.m, k)
			} else if oldestAt.IsZero() || v.expires.Before(oldestAt) {
				oldest, oldestAt = k, v.expires
			}
		}
		if len(s.m) >= maxSignins {
			delete(s.m, oldest)
		}
	}
	s.m[sha256.Sum256([]byte(token))] = signin{keyID: keyID, expires: now.Add(sessionLifetime)}
	return token
}

func (s *signins) lookup(token string) (signin, bool) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	si, ok := s.m[h]
	if ok && s.now().After(si.expires) {
		delete(s.m, h)
		return signin{}, false
	}
	return si, ok
}

func (s *signins) end(token string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(token)))
	s.mu.Unlock()
}

// failLimiter rate-limits failed sign-ins: per client address, and in
// total so that many addresses cannot share out a guessing campaign.
type failLimiter struct {
	mu     sync.Mutex
	now    func() time.Time
	window time.Time
	total  int
	per    map[string]int
}

const (
	failWindow      = time.Minute
	maxFailsPerAddr = 5
	maxFailsTotal   = 60
)

func newFailLimiter(now func() time.Time) *failLimiter {
	return &failLimiter{now: now, per: map[string]int{}}
}

func (l *failLimiter) roll() {
	if now := l.now(); now.Sub(l.window) >= failWindow {
		l.window, l.total = now, 0
		clear(l.per)
	}
}

// blocked reports whether addr may not try now, and for how long.
func (l *failLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	if l.per[addr] >= maxFailsPerAddr || l.total >= maxFailsTotal {
		return l.window.Add(failWindow).Sub(l.now()), true
	}
	return 0, false
}

func (l *failLimiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	if len(l.per) < 100000 { // the total still counts beyond this
		l.per[addr]++
	}
	l.total++
}

func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// viewer is who is looking: the socket, or a key's console session.
type viewer struct {
	Trusted bool
	KeyID   string
}

type viewerKey struct{}

func viewerOf(r *http.Request) viewer {
	v, _ := r.Context().Value(viewerKey{}).(viewer)
	return v
}

func (c *Console) cookieName(r *http.Request) string {
	if r.TLS != nil {
		return secureCookieName
	}
	return cookieName
}

// needAuth lets trusted requests and valid console sessions through; others
// are sent to sign in (pages) or refused (streams and actions).
func (c *Console) needAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.Trusted(r) {
			next(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, viewer{Trusted: true})))
			return
		}
		why := ""
		if ck, err := r.Cookie(c.cookieName(r)); err == nil {
			si, ok := c.signins.lookup(ck.Value)
			switch {
			case ok && c.cfg.Keys != nil && c.cfg.Keys.Valid(si.keyID):
				next(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, viewer{KeyID: si.keyID})))
				return
			case ok:
				// Kept until it expires, so every request with it is told
				// why (the key is checked each time; nothing it opens).
				why = "revoked"
			default:
				why = "expired"
			}
		}
		if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/stream") {
			c.errorPage(w, r, http.StatusUnauthorized, "Sign in first: this console session is missing, expired or its API key was revoked.")
			return
		}
		target := "/console/signin?next=" + urlQueryEscape(r.URL.RequestURI())
		if why != "" {
			target += "&why=" + why
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

type signinView struct {
	Next    string
	Error   string
	Notice  string
	Trusted bool
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	v := signinView{Next: safeNext(r.URL.Query().Get("next")), Trusted: c.cfg.Trusted(r)}
	switch r.URL.Query().Get("why") {
	case "revoked":
		v.Notice = "Your console session ended: the API key it was signed in with was revoked or removed. Sign in with a valid key."
	case "expired":
		v.Notice = "Your console session expired (or the daemon restarted). Sign in again."
	case "out":
		v.Notice = "Signed out."
	}
	c.render(w, r, http.StatusOK, "signin", "Sign in", v)
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	if c.cfg.Trusted(r) {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	addr := clientAddr(r)
	if wait, blocked := c.limiter.blocked(addr); blocked {
		w.Header().Set("Retry-After", itoa(int(wait.Seconds())+1))
		c.render(w, r, http.StatusTooManyRequests, "signin", "Sign in", signinView{Next: next,
			Error: "Too many failed sign-ins: wait " + itoa(int(wait.Seconds())+1) + " seconds and try again."})
		return
	}
	key := strings.TrimSpace(r.PostFormValue("api_key"))
	id, ok := "", false
	if key != "" && c.cfg.Keys != nil {
		id, ok = c.cfg.Keys.Identify(key)
	}
	if !ok {
		c.limiter.fail(addr)
		c.log.Warn("console sign-in refused", "remote", addr)
		c.render(w, r, http.StatusUnauthorized, "signin", "Sign in", signinView{Next: next,
			Error: "That API key is not valid (unknown or revoked). Create one over the socket with: sandbox0d apikeys create --name NAME"})
		return
	}
	token := c.signins.start(id)
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(r), Value: token, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLifetime.Seconds())})
	c.log.Info("console sign-in", "key_id", id, "remote", addr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(c.cookieName(r)); err == nil {
		c.signins.end(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(r), Value: "", Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/console/signin?why=out", http.StatusSeeOther)
}
