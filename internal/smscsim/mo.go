package smscsim

import (
	"context"
	"fmt"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// MO is a mobile-originated message to send as text: one deliver_sm, or the parts of a long message.
type MO struct {
	From, To string // source_addr and destination_addr; empty: Options.MOFrom and MOTo
	Text     string // coded GSM 03.38 when it can be, else UCS-2
	// Split is how a text longer than one SMS is cut into parts; 0 means pdu.SplitUDH8. A text that
	// fits one SMS is one plain deliver_sm whatever the mode (but SplitPayload).
	Split pdu.SplitMode
	// Bind is the id of the link to send on (see Bind.ID); 0 means the first bound link that can receive.
	Bind uint64
}

// MOResult is how an MO went.
type MOResult struct {
	Bind    uint64              `json:"bind"`
	Parts   int                 `json:"parts"`
	Answers []pdu.CommandStatus `json:"-"`
}

// SendText sends mo as one deliver_sm or as the parts of a long message, on one link, each part
// after the answer to the one before; it stops at the first part not answered ESME_ROK. It fails with
// ErrUnknownBind for a Bind that is not bound, ErrNoBind when no link can receive, and with the
// text's error when it cannot be coded or split.
func (s *Sim) SendText(ctx context.Context, mo MO) (MOResult, error) {
	if mo.From == "" {
		mo.From = s.opts.MOFrom
	}
	if mo.To == "" {
		mo.To = s.opts.MOTo
	}
	if mo.Split == 0 {
		mo.Split = pdu.SplitUDH8
	}
	var to *session.Session
	s.mu.Lock()
	if mo.Bind != 0 {
		if l := s.links[mo.Bind]; l != nil && !closing(l.ss) {
			to = l.ss
		}
		if to == nil {
			s.mu.Unlock()
			return MOResult{}, ErrUnknownBind
		}
		if !to.BindType().CanReceive() {
			s.mu.Unlock()
			return MOResult{}, fmt.Errorf("%w: bind %d is a %s", ErrNoBind, mo.Bind, to.BindType())
		}
	} else {
		to = s.receiver()
	}
	s.mu.Unlock()
	if to == nil {
		return MOResult{}, ErrNoBind
	}
	ref := uint16(s.moRef.Add(1))
	parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddrTON: 1, SourceAddrNPI: 1, SourceAddr: mo.From,
		DestinationAddr: mo.To}, mo.Split, mo.Text, ref)
	if err != nil {
		return MOResult{}, fmt.Errorf("smscsim: MO: %w", err)
	}
	res := MOResult{Bind: to.ID()}
	for _, d := range parts {
		st, err := s.deliver(ctx, to, d, kindMO, 0)
		res.Parts++
		res.Answers = append(res.Answers, st)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// receiver is the first bound link that can receive, or nil. Under s.mu.
func (s *Sim) receiver() *session.Session {
	for _, ss := range s.bound {
		if ss.BindType().CanReceive() && ss.State() == session.StateBound {
			return ss
		}
	}
	return nil
}

// moTimer sends Options.MOText every Options.MOEvery while a link can receive, until Close.
func (s *Sim) moTimer() {
	t := time.NewTicker(s.opts.MOEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.SendTimeout)
		res, err := s.SendText(ctx, MO{Text: s.opts.MOText})
		cancel()
		if err != nil {
			s.opts.Logger.Debug().Err(err).Msg("timed MO not sent")
			continue
		}
		s.opts.Logger.Debug().Uint64("bind", res.Bind).Int("parts", res.Parts).Msg("timed MO sent")
	}
}
