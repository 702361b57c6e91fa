package api

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// hookCounts count webhook deliveries by outcome (smppgw_webhook_deliveries_total).
type hookCounts struct {
	vec                                 *prometheus.CounterVec
	delivered, failed, expired, dropped prometheus.Counter
}

func newHookCounts() hookCounts {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smppgw_webhook_deliveries_total",
		Help: "Webhook and callback POST outcomes: delivered (2xx), failed (an attempt that will be retried or dropped), expired (dropped after the retry window), dropped (its webhook was removed or disabled, or its stored body unreadable).",
	}, []string{"outcome"})
	return hookCounts{vec: v, delivered: v.WithLabelValues("delivered"), failed: v.WithLabelValues("failed"),
		expired: v.WithLabelValues("expired"), dropped: v.WithLabelValues("dropped")}
}

// handleDebug registers /metrics and, when configured, /debug/pprof/ on the HTTP mux.
func (s *Server) handleDebug(hm *http.ServeMux) error {
	if m := s.cfg.Metrics; m.enabled() {
		reg := prometheus.NewRegistry()
		cs := []prometheus.Collector{
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			s.hooks.counts.vec,
		}
		for _, c := range append(cs, m.Collectors...) {
			if err := reg.Register(c); err != nil {
				return err
			}
		}
		var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			// A scrape that could not read everything still serves the rest (the gateway's
			// collector reports smppgw_scrape_error).
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      promLog{s},
		})
		if m.Auth {
			h = s.adminOnly(h)
		}
		hm.Handle("GET /metrics", h)
	}
	if s.cfg.PProf {
		hm.Handle("/debug/pprof/", s.adminOnly(http.HandlerFunc(pprof.Index)))
		hm.Handle("/debug/pprof/cmdline", s.adminOnly(http.HandlerFunc(pprof.Cmdline)))
		hm.Handle("/debug/pprof/profile", s.adminOnly(http.HandlerFunc(pprof.Profile)))
		hm.Handle("/debug/pprof/symbol", s.adminOnly(http.HandlerFunc(pprof.Symbol)))
		hm.Handle("/debug/pprof/trace", s.adminOnly(http.HandlerFunc(pprof.Trace)))
	}
	return nil
}

// adminOnly serves h to the callers the admin endpoints take: an operator with Basic credentials
// or an API key with the admin scope.
func (s *Server) adminOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := metadata.NewIncomingContext(r.Context(), metadata.MD{"authorization": r.Header.Values("Authorization")})
		_, err := s.auth.authorize(ctx, adminPrefix+"Debug")
		switch status.Code(err) {
		case codes.OK:
			h.ServeHTTP(w, r)
			return
		case codes.Unauthenticated:
			w.Header().Set("WWW-Authenticate", `Bearer realm="smppgw"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="smppgw", charset="UTF-8"`)
			http.Error(w, "missing or unknown credentials", http.StatusUnauthorized)
		case codes.PermissionDenied:
			http.Error(w, "the admin scope is required", http.StatusForbidden)
		default:
			s.log.Warn().Err(err).Str("path", r.URL.Path).Msg("cannot check credentials")
			http.Error(w, "cannot check credentials", http.StatusServiceUnavailable)
		}
	})
}

// promLog sends promhttp's errors (a collector that failed) to the API's log.
type promLog struct{ s *Server }

func (l promLog) Println(v ...any) { l.s.log.Warn().Msg(fmt.Sprint(v...)) }
