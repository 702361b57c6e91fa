package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/zerolog"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/api/openapi"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Server serves MessageService and AdminService over gRPC and, through grpc-gateway, over REST,
// with health, reflection and the OpenAPI document. REST calls are forwarded to the gRPC server
// over an in-memory connection, so both transports pass the same interceptors (authentication,
// error mapping) and REST server streams work.
type Server struct {
	cfg  Config
	gw   Gateway
	st   store.Store
	log  zerolog.Logger
	auth *authenticator
	tls  *tls.Config

	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	inproc *pipeListener
	conn   *grpc.ClientConn
	hooks  *dispatcher
	sinked bool // the gateway records events through hooks (dispatcher.attach)

	mu      sync.Mutex
	addrs   [2]net.Addr // gRPC and HTTP, once serving
	started bool
	done    context.Context // ends at Shutdown: streams and the dispatcher stop
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// NewServer checks cfg and builds a server for gw and st; nothing listens until Serve or Start.
func NewServer(cfg Config, gw Gateway, st store.Store, log zerolog.Logger) (*Server, error) {
	if gw == nil || st == nil {
		return nil, errors.New("api: NewServer needs a gateway and a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Instance == "" {
		cfg.Instance, _ = os.Hostname()
	}
	s := &Server{done: context.Background(), cfg: cfg, gw: gw, st: st, log: log.With().Str("component", "api").Logger()}
	s.auth = &authenticator{keys: st, admins: map[string][]byte{}, now: time.Now}
	for _, u := range cfg.AdminUsers {
		s.auth.admins[u.Name] = []byte(u.PasswordHash)
	}
	if cfg.TLS != nil {
		var err error
		if s.tls, err = cfg.TLS.load(); err != nil {
			return nil, err
		}
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
		// Calls run on long-lived workers rather than each on a new goroutine whose stack grows
		// again (runtime.newstack was 4-9% of the daemon's CPU under gRPC Submits): a Submit
		// holds its worker while its message waits for the group commit, and a StreamReceipts
		// holds one for its life, so one per CPU left nearly every call to a goroutine of its own.
		// Calls beyond callWorkers still spill to new goroutines.
		grpc.NumStreamWorkers(callWorkers),
	}
	s.grpc = grpc.NewServer(opts...)
	smppgwv1.RegisterMessageServiceServer(s.grpc, &messageService{s: s})
	smppgwv1.RegisterAdminServiceServer(s.grpc, &adminService{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.hooks = newDispatcher(cfg.Webhooks, cfg.Instance, st, s.log)
	s.sinked = s.hooks.attach(gw)

	// The REST side dials the same grpc.Server in memory; credentials of the REST caller travel
	// as metadata, transport security is the HTTP listener's.
	s.inproc = newPipeListener()
	conn, err := grpc.NewClient("passthrough:///smppgw-inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("api: in-process client: %w", err)
	}
	s.conn = conn
	strict := newStrictJSON()
	mux := runtime.NewServeMux(
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, strict),
		runtime.SetQueryParameterParser(&strictQuery{}), // process-wide in grpc-gateway; strictQuery holds no state
		runtime.WithForwardResponseOption(startStream),
	)
	ctx := context.Background()
	if err := smppgwv1.RegisterMessageServiceHandlerClient(ctx, mux, smppgwv1.NewMessageServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := smppgwv1.RegisterAdminServiceHandlerClient(ctx, mux, smppgwv1.NewAdminServiceClient(conn)); err != nil {
		return nil, err
	}
	hm := http.NewServeMux()
	hm.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	hm.HandleFunc("GET /readyz", s.readyz)
	hm.Handle("/openapi.json", openapi.Handler())
	s.registerConsole(hm) // /console: the operators' web console (console.go)
	if err := s.handleDebug(hm); err != nil {
		return nil, err
	}
	s.registerCluster(hm) // GET /v1/admin/cluster: every instance sharing the store (cluster.go)
	hm.Handle("/", guard(mux, strict))
	s.http = &http.Server{Handler: hm, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: stdlog.New(s.log.With().Str("part", "http").Logger().Level(zerolog.DebugLevel), "", 0)}
	return s, nil
}

// callWorkers is how many gRPC calls at once run on long-lived workers: about what an application
// keeps in flight (smppbench's row 5 keeps 256). An idle worker is a parked goroutine, whose stack
// the garbage collector shrinks back.
const callWorkers = 256

// maxRequestBody is the largest REST request body: gRPC's default receive limit, which a request
// forwarded to the gRPC server must fit anyway.
const maxRequestBody = 4 << 20

// errorHandler answers as grpc-gateway does (the google.rpc.Status JSON with the HTTP code of the
// gRPC code), except that a body over the limit is 413 whichever reader tripped over it, and a 401
// carries proper WWW-Authenticate challenges (grpc-gateway would put the status message there):
// Bearer, and Basic too on the admin paths.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if lb, ok := r.Context().Value(bodyLimitKey{}).(*bodyLimit); ok && lb.hit.Load() {
		err = errBodyTooLarge
	}
	if status.Code(err) == codes.Unauthenticated {
		w = &challenger{ResponseWriter: w, admin: strings.HasPrefix(r.URL.Path, "/v1/admin/")}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

type challenger struct {
	http.ResponseWriter
	admin bool
}

func (c *challenger) WriteHeader(code int) {
	h := c.Header()
	h.Set("WWW-Authenticate", `Bearer realm="smppgw"`)
	if c.admin {
		h.Add("WWW-Authenticate", `Basic realm="smppgw", charset="UTF-8"`)
	}
	c.ResponseWriter.WriteHeader(code)
}

// startStream sends a server stream's 200 and headers as soon as the gRPC stream is open (the
// server sends its headers once it is subscribed), rather than with the first message, so a REST
// client knows it will not miss what happens next.
func startStream(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if m != nil {
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w).Flush()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) ready(ctx context.Context) error {
	if err := s.st.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.gw.Ready(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// Start listens on cfg.GRPCListen and cfg.HTTPListen and serves them in the background.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	gl, err := lc.Listen(ctx, "tcp", s.cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("api: grpc_listen: %w", err)
	}
	hl, err := lc.Listen(ctx, "tcp", s.cfg.HTTPListen)
	if err != nil {
		gl.Close()
		return fmt.Errorf("api: http_listen: %w", err)
	}
	if err := s.begin(); err != nil {
		gl.Close()
		hl.Close()
		return err
	}
	s.mu.Lock()
	s.addrs = [2]net.Addr{gl.Addr(), hl.Addr()}
	s.mu.Unlock()
	go func() {
		if err := s.serve(gl, hl); err != nil {
			s.log.Error().Err(err).Msg("api stopped serving")
		}
	}()
	return nil
}

// Addrs returns the gRPC and HTTP listeners' addresses once serving (nil before), for callers
// that listen on port 0.
func (s *Server) Addrs() (grpcAddr, httpAddr net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[0], s.addrs[1]
}

// Serve serves gRPC on grpcL and REST on httpL (with TLS when configured) until Shutdown, then
// returns nil. If either listener fails, both stop and Serve returns that error.
func (s *Server) Serve(grpcL, httpL net.Listener) error {
	if err := s.begin(); err != nil {
		return err
	}
	return s.serve(grpcL, httpL)
}

func (s *Server) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("api: server already started")
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.done, s.stop = ctx, cancel
	s.wg.Add(3)
	go func() { defer s.wg.Done(); _ = s.grpc.Serve(s.inproc) }()
	go func() { defer s.wg.Done(); s.watchReady(ctx) }()
	go func() { defer s.wg.Done(); s.hooks.run(ctx, s.gw, s.sinked) }()
	return nil
}

func (s *Server) serve(grpcL, httpL net.Listener) error {
	if s.tls != nil {
		httpL = tls.NewListener(httpL, s.tls)
		g := s.tls.Clone()
		g.NextProtos = []string{"h2"} // gRPC clients insist on ALPN h2
		grpcL = tls.NewListener(grpcL, g)
	}
	s.mu.Lock()
	s.addrs = [2]net.Addr{grpcL.Addr(), httpL.Addr()}
	s.mu.Unlock()
	s.log.Info().Str("grpc", grpcL.Addr().String()).Str("http", httpL.Addr().String()).Bool("tls", s.tls != nil).Msg("api listening")
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(grpcL) }()
	go func() {
		err := s.http.Serve(httpL)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	first := <-errc
	if first != nil && !errors.Is(first, grpc.ErrServerStopped) {
		// One port down means the API is broken: stop the other too, so the caller sees it.
		s.log.Error().Err(first).Msg("api listener failed")
		_ = s.http.Close()
		s.grpc.Stop()
	}
	second := <-errc
	if first == nil || errors.Is(first, grpc.ErrServerStopped) {
		first = second
	}
	if errors.Is(first, grpc.ErrServerStopped) {
		first = nil
	}
	return first
}

// watchReady keeps the gRPC health status in step with readiness.
func (s *Server) watchReady(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReadyInterval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.ready(cctx)
		cancel()
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, svc := range []string{"", smppgwv1.MessageService_ServiceDesc.ServiceName, smppgwv1.AdminService_ServiceDesc.ServiceName} {
			s.health.SetServingStatus(svc, st)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown stops accepting calls, ends streams and lets unary calls finish until ctx ends, then
// closes whatever is left; pending webhook retries are dropped (their events stay in the store).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	s.health.Shutdown()
	if stop != nil {
		stop() // ends StreamReceipts subscriptions and the dispatcher
	}
	herr := s.http.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	s.conn.Close()
	s.wg.Wait()
	if herr != nil {
		_ = s.http.Close()
		return herr
	}
	return ctx.Err()
}

// shuttingDown is closed once Shutdown begins.
func (s *Server) shuttingDown() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done.Done()
}
