package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/store"
)

// The web console (/console) is server-rendered HTML for operators: live sessions and upstreams,
// queues and throughput, recent messages with their receipts, and a few actions. It reads what the
// admin API reads (the Gateway and the store) and needs no build step: html/template pages and a
// few lines of JavaScript, embedded.
//
// Who: the operators of api.admin_users, with HTTP Basic credentials (the browser's own prompt),
// checked as /v1/admin checks them. Admin API keys are not accepted: a browser cannot send them.
//
// CSRF: a browser sends Basic credentials with any request to the origin, a cross-site form post
// included, so every action (a POST) is checked twice:
//   - net/http's CrossOriginProtection refuses a request the browser marks as cross-site
//     (Sec-Fetch-Site, or an Origin that is not the Host);
//   - a double-submit token: a random value in a SameSite=Strict, HttpOnly cookie scoped to
//     /console, which each form repeats in a hidden field. Another site can neither read the cookie
//     nor make the browser send it, so it cannot fill the field. The first check alone would let an
//     old browser without Sec-Fetch-Site or Origin through; the token does not depend on them.
//
// Nothing is loaded from elsewhere: the Content-Security-Policy allows this origin's scripts,
// styles and form targets only.

//go:embed console/templates/*.html
var consoleTemplates embed.FS

//go:embed console/static
var consoleStatic embed.FS

const (
	consoleCSRFCookie = "smppgw_console_csrf"
	consoleCSRFField  = "csrf"
	consoleMaxForm    = 16 << 10
	consoleRecent     = 50               // messages on /console/messages
	consoleTimeout    = 10 * time.Second // bounds one page's reads, or one action
)

type console struct {
	s     *Server
	pages map[string]*template.Template
	cop   *http.CrossOriginProtection
}

// registerConsole adds the console's routes to mux.
func (s *Server) registerConsole(mux *http.ServeMux) {
	c := &console{s: s, pages: map[string]*template.Template{}, cop: http.NewCrossOriginProtection()}
	for _, page := range []string{"overview", "messages", "message", "error"} {
		c.pages[page] = template.Must(template.New(page).Funcs(consoleFuncs).
			ParseFS(consoleTemplates, "console/templates/layout.html", "console/templates/"+page+".html"))
	}
	static, _ := fs.Sub(consoleStatic, "console/static")
	mux.Handle("GET /console/static/", c.authed(http.StripPrefix("/console/static/", http.FileServerFS(static)).ServeHTTP))
	mux.Handle("GET /console", c.authed(c.overview))
	mux.Handle("GET /console/{$}", http.RedirectHandler("/console", http.StatusMovedPermanently))
	mux.Handle("GET /console/messages", c.authed(c.messages))
	mux.Handle("GET /console/messages/{id}", c.authed(c.message))
	mux.Handle("POST /console/sessions/{id}/unbind", c.authed(c.action(c.unbind)))
	mux.Handle("POST /console/upstreams/{name}/{action}", c.authed(c.action(c.upstream)))
}

// authed lets operators with Basic credentials through, with the headers every console answer
// carries.
func (c *console) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "basic") {
			c.challenge(w)
			return
		}
		if _, ok := c.s.auth.checkBasic(strings.TrimSpace(cred)); !ok {
			c.challenge(w)
			return
		}
		h(w, r)
	})
}

func (c *console) challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="smppgw", charset="UTF-8"`)
	msg := "401 Unauthorized: sign in as an operator (api.admin_users)\n"
	if len(c.s.auth.admins) == 0 {
		msg = "401 Unauthorized: no operator is configured (api.admin_users is empty), so the console is closed\n"
	}
	http.Error(w, msg, http.StatusUnauthorized)
}

// csrfToken returns the browser's token, setting a fresh one when it has none.
func (c *console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(consoleCSRFCookie); err == nil && validCSRF(ck.Value) {
		return ck.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: consoleCSRFCookie, Value: tok, Path: "/console", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return tok
}

func validCSRF(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// action checks a POST for CSRF, then runs do, which returns where to go next (303) or an error.
func (c *console) action(do func(ctx context.Context, r *http.Request) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.cop.Check(r); err != nil {
			c.fail(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, consoleMaxForm)
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, http.StatusBadRequest, "unreadable form")
			return
		}
		ck, err := r.Cookie(consoleCSRFCookie)
		field := r.PostForm.Get(consoleCSRFField)
		if err != nil || field == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(field)) != 1 {
			c.fail(w, r, http.StatusForbidden, "missing or stale form token: reload the page and try again")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), consoleTimeout)
		defer cancel()
		next, err := do(ctx, r)
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, gateway.ErrUnknownSession), errors.Is(err, gateway.ErrUnknownUpstream), errors.Is(err, store.ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, errConsoleBadRequest):
				code = http.StatusBadRequest
			default:
				c.s.log.Error().Err(err).Str("path", r.URL.Path).Msg("console action failed")
			}
			c.fail(w, r, code, err.Error())
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

var errConsoleBadRequest = errors.New("bad request")

// done builds the overview's address that reports what was done.
func done(what, name string) string {
	return "/console?" + url.Values{"done": {what}, "name": {name}}.Encode()
}

// flashes are the reports an action's redirect may ask for; anything else shows nothing.
var flashes = map[string]string{
	"unbind":    "Session %s unbound.",
	"pause":     "Upstream %s paused.",
	"resume":    "Upstream %s resumed.",
	"reconnect": "Upstream %s reconnecting.",
}

func (c *console) unbind(ctx context.Context, r *http.Request) (string, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: session id %q is not a number", errConsoleBadRequest, r.PathValue("id"))
	}
	if err := c.s.gw.UnbindSession(ctx, id, false); err != nil {
		return "", fmt.Errorf("unbind session %d: %w", id, err)
	}
	return done("unbind", strconv.FormatUint(id, 10)), nil
}

func (c *console) upstream(_ context.Context, r *http.Request) (string, error) {
	name, act := r.PathValue("name"), r.PathValue("action")
	var err error
	switch act {
	case "pause", "resume":
		err = c.s.gw.SetUpstreamPaused(name, act == "pause")
	case "reconnect":
		err = c.s.gw.ReconnectUpstream(name)
	default:
		return "", fmt.Errorf("%w: unknown upstream action %q", errConsoleBadRequest, act)
	}
	if err != nil {
		return "", fmt.Errorf("%s upstream %s: %w", act, name, err)
	}
	return done(act, name), nil
}

// render executes page into a buffer first, so a failing template gives a clean 500.
func (c *console) render(w http.ResponseWriter, r *http.Request, code int, page string, data consolePage) {
	data.base().CSRF = c.csrfToken(w, r)
	name := page
	if r.URL.Query().Get("fragment") == "live" {
		name = "live" // what the refresh script swaps in
	}
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.s.log.Error().Err(err).Str("page", page).Msg("console page failed")
		http.Error(w, "500 page failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (c *console) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	c.render(w, r, code, "error", &errorPage{pageBase: pageBase{Title: http.StatusText(code)}, Code: code, Message: msg})
}
