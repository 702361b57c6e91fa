package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
)

// The cluster view: GET /v1/admin/cluster lists every instance sharing the store (several on one
// Redis), each as it last published itself: its counters, ESME sessions and upstream binds, named,
// with the instance answering marked self and those that stopped publishing marked stale. With the
// embedded store it is this instance alone. It is plain JSON beside the gRPC-gateway routes (the
// contract in proto/ does not carry it), for the same callers as /v1/admin: an operator with Basic
// credentials or an admin-scope API key.

// clusterGateway is the part of the gateway the cluster view needs; a Gateway without it (a test's
// fake) answers with this instance alone, from Sessions and Stats.
type clusterGateway interface {
	Instances(ctx context.Context) ([]gateway.InstanceState, error)
}

// clusterResponse is the body of GET /v1/admin/cluster.
type clusterResponse struct {
	Instance  string                  `json:"instance"` // the instance that answered
	Time      time.Time               `json:"time"`
	Instances []gateway.InstanceState `json:"instances"`
}

func (s *Server) registerCluster(hm *http.ServeMux) {
	hm.Handle("GET /v1/admin/cluster", s.adminOnly(http.HandlerFunc(s.cluster)))
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out := clusterResponse{Instance: s.cfg.Instance, Time: time.Now().UTC()}
	if cg, ok := s.gw.(clusterGateway); ok {
		in, err := cg.Instances(ctx)
		if err != nil {
			s.log.Warn().Err(err).Msg("cluster view: instances not read")
			writeJSONError(w, http.StatusServiceUnavailable, "instances not read from the store: "+err.Error())
			return
		}
		out.Instances = in
	} else {
		out.Instances = []gateway.InstanceState{s.localInstance(ctx)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// localInstance is this instance from the api.Gateway interface alone.
func (s *Server) localInstance(ctx context.Context) gateway.InstanceState {
	in := gateway.InstanceState{Instance: s.cfg.Instance, Updated: time.Now(), Self: true}
	if st, err := s.gw.Stats(ctx); err == nil {
		in.Stats = gateway.InstanceStats{Accepted: st.Accepted, Rejected: st.Rejected, Submitted: st.Submitted,
			ReceiptsIn: st.ReceiptsIn, MOIn: st.MOIn, Pending: st.Pending, Sessions: st.Sessions,
			AcceptRate: st.AcceptRate, SubmitRate: st.SubmitRate, ReceiptRate: st.ReceiptRate}
	}
	for _, si := range s.gw.Sessions() {
		in.Sessions = append(in.Sessions, gateway.InstanceSession{ID: si.ID, SystemID: si.SystemID, BindType: si.BindType.String(),
			State: si.State.String(), RemoteAddr: si.RemoteAddr, BoundAt: si.BoundAt, SubmitSM: si.SubmitSMIn, DeliverSM: si.DeliverSMOut,
			WindowUsed: si.WindowUsed, WindowSize: si.WindowSize, LastActivity: si.LastActivity})
	}
	for _, u := range s.gw.Upstreams() {
		in.Upstreams = append(in.Upstreams, gateway.InstanceUpstream{Name: u.Config.Name, State: u.Status.State.String(),
			Bound: u.Status.State == gateway.ClientBound, Paused: u.Paused, Since: u.Status.Since, LastError: u.Status.LastError,
			Binds: u.Status.Binds, Sent: u.Status.Sent, Accepted: u.Status.Accepted, Rejected: u.Status.Rejected, Requeued: u.Status.Requeued})
	}
	return in
}

// writeJSONError answers with the google.rpc.Status shape the other /v1 endpoints use.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 14, "message": msg, "details": []any{}})
}

// otherSessions are the ESME sessions of the other instances sharing the store, as they last
// published them (stale instances left out), for ListSessions: each named by its instance, its id
// "id@instance" (ids are unique within an instance only; GetSession and UnbindSession act on this
// instance's sessions and refuse these, naming the instance to ask). Without a cluster, none.
func (a *adminService) otherSessions(ctx context.Context, systemID string) []*smppgwv1.Session {
	cg, ok := a.s.gw.(clusterGateway)
	if !ok {
		return nil
	}
	all, err := cg.Instances(ctx)
	if err != nil {
		a.s.log.Warn().Err(err).Msg("sessions of the other instances not read; listing this instance's")
		return nil
	}
	var out []*smppgwv1.Session
	for _, in := range all {
		if in.Self || in.Stale {
			continue
		}
		for _, s := range in.Sessions {
			if systemID != "" && s.SystemID != systemID {
				continue
			}
			out = append(out, &smppgwv1.Session{
				SessionId: strconv.FormatUint(s.ID, 10) + "@" + in.Instance, SystemId: s.SystemID,
				BindType: bindTypeNamed(s.BindType), RemoteAddress: s.RemoteAddr, Instance: in.Instance,
				BindTime: ts(s.BoundAt), LastActivityTime: ts(s.LastActivity),
				WindowSize: uint32(max(s.WindowSize, 0)), WindowInUse: uint32(max(s.WindowUsed, 0)),
				Counters: &smppgwv1.SessionCounters{SubmitSm: s.SubmitSM, DeliverSm: s.DeliverSM},
			})
		}
	}
	return out
}

// bindTypeNamed is the proto bind type of a session.BindType's name.
func bindTypeNamed(name string) smppgwv1.BindType {
	for _, b := range []session.BindType{session.BindTransmitter, session.BindReceiver, session.BindTransceiver} {
		if b.String() == name {
			return bindTypeToProto(b)
		}
	}
	return smppgwv1.BindType_BIND_TYPE_UNSPECIFIED
}
