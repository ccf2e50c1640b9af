package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"lambdachaos/internal/faults"
	"lambdachaos/internal/wire"
)

var nextSuffix = []byte("/runtime/invocation/next")

// conn is one downstream connection (the runtime's) and its paired upstream connection.
type conn struct {
	p        *Proxy
	down     net.Conn
	dr       *wire.Reader
	dout     *wire.Out
	up       net.Conn
	ur       *wire.Reader
	uout     *wire.Out
	upUsed   time.Time // when the upstream connection last finished a response
	upReused bool      // the request in flight went out on a kept-alive connection
	replay   [][]byte  // that request, if held whole: sent again once if upstream closed first
	held     [2][]byte // replay's storage, so that holding a request allocates nothing
}

func newConn(p *Proxy, down net.Conn) *conn {
	return &conn{p: p, down: down, dr: wire.NewReader(down), dout: wire.NewOut(down)}
}

func (c *conn) run() {
	defer func() {
		if r := recover(); r != nil {
			c.p.Log.Log(fmt.Sprintf("proxy error, connection closed: %v", r))
		}
		c.dropUpstream()
		_ = c.down.Close()
	}()
	for {
		keep, err := c.exchange()
		if err != nil {
			if !errors.Is(err, wire.ErrClosed) {
				c.p.Log.Log(fmt.Sprintf("connection from the runtime dropped: %v", err))
			}
			return
		}
		if !keep {
			return
		}
	}
}

// exchange relays one request and its response; false when the connection must close.
func (c *conn) exchange() (bool, error) {
	head, err := c.dr.ReadHead()
	if err != nil {
		return false, err
	}
	lower := c.dr.LowerHead()
	kind, length, keep, err := wire.Frame(head, lower, false, "")
	if err != nil {
		return false, err
	}
	sentBefore := c.dout.Sent
	reusable, err := c.route(head, lower, kind, length)
	if err == nil {
		return reusable && keep, nil
	}
	if errors.Is(err, wire.ErrMalformed) {
		return false, err
	}
	if c.dout.Sent == sentBefore {
		c.badGateway(err)
	}
	return false, nil
}

func (c *conn) route(head, lower []byte, kind wire.Kind, length int64) (bool, error) {
	expect := bytes.Contains(lower, []byte("\r\nexpect:"))
	method, path := requestLine(head)
	if c.p.Cfg.FaultType != "" {
		if string(method) == "GET" && bytes.HasSuffix(path, nextSuffix) {
			return c.next(head, path, kind, length)
		}
		if string(method) == "POST" && c.p.hasPending() {
			if d, id := c.p.claim(path); d != nil {
				if injected := c.p.resultRequest(path, id, d.Fault); injected != nil {
					return c.replaceResult(kind, length, injected, id, d, expect)
				}
			}
		}
	}
	if err := c.sendUpstream(head, kind, length, expect); err != nil {
		return false, err
	}
	return c.relayResponse(string(method) == "HEAD")
}

// requestLine is the method and target of a request head (slices of it: nothing allocated).
func requestLine(head []byte) ([]byte, []byte) {
	sp := bytes.IndexByte(head, ' ')
	if sp < 0 {
		return nil, nil
	}
	rest := head[sp+1:]
	end := bytes.IndexAny(rest, " \r")
	if end < 0 {
		end = len(rest)
	}
	return head[:sp], rest[:end]
}

// --- routes ----------------------------------------------------------------------------------

// next fetches an event; a decided fault is applied here (latency, prevent-execution) or
// marked for the invocation's result.
func (c *conn) next(head, path []byte, kind wire.Kind, length int64) (bool, error) {
	for {
		if err := c.sendUpstream(head, kind, length, false); err != nil {
			return false, err
		}
		kind, length = wire.None, 0 // a re-fetch after a prevented invocation has no body
		rhead, err := c.readHead()
		if err != nil {
			return false, err
		}
		rlower := c.ur.LowerHead()
		var d *faults.Decision
		if wire.Status(rhead) == "200" { // an event; its request id matters to a seeded draw only
			var seedID []byte
			if c.p.Cfg.DecisionSeed != "" {
				seedID = wire.Header(rhead, rlower, "lambda-runtime-aws-request-id")
			}
			d = c.p.decision(seedID)
		}
		if d == nil {
			return c.relayBody(rhead, rlower, false)
		}
		again, reusable, err := c.applyToEvent(rhead, rlower, path, d)
		if err != nil || !again {
			return reusable, err
		}
	}
}

// applyToEvent applies d to the event whose head is rhead: again means the event was answered
// here (prevent execution) and the runtime's /next must fetch another. The event's body is
// relayed (or dropped) as it arrives, never held: a delay is served before it is read.
func (c *conn) applyToEvent(rhead, rlower, path []byte, d *faults.Decision) (bool, bool, error) {
	id := bytes.Clone(wire.Header(rhead, rlower, "lambda-runtime-aws-request-id")) // rhead is reused
	if d.Fault == "latency" {
		// Reported when decided, before the delay: a delay past the function's timeout ends
		// the environment during the sleep, and a record written after it would never be.
		c.p.report(id, d)
		c.p.sleepMs(d.DelayMs)
		reusable, err := c.relayBody(rhead, rlower, false)
		return false, reusable, err
	}
	if d.PreventExecution && len(id) > 0 {
		// Its injected result cannot be built: logged, and the handler runs after all.
		if injected := c.p.resultRequest(path, id, d.Fault); injected != nil {
			return true, false, c.prevent(rhead, rlower, injected, id, d)
		}
	}
	c.p.remember(id, d) // no request id: nothing can match its result, which passes unchanged
	reusable, err := c.relayBody(rhead, rlower, false)
	return false, reusable, err
}

// prevent answers a prevent-execution invocation upstream itself: its event is read and
// dropped, the injected result posted, and upstream's answer to it drained.
func (c *conn) prevent(rhead, rlower, injected, id []byte, d *faults.Decision) error {
	kind, length, keep, err := wire.Frame(rhead, rlower, true, "GET")
	if err != nil {
		return err
	}
	if err := c.ur.CopyBody(kind, length, wire.Discard()); err != nil {
		return err
	}
	c.upstreamReusable(kind, keep)
	if err := c.sendWhole(injected); err != nil {
		return err
	}
	if err := c.drainResponse(); err != nil {
		return err
	}
	c.p.report(id, d)
	return nil
}

// replaceResult: the handler ran; its result is read and discarded, the injected one sent.
func (c *conn) replaceResult(kind wire.Kind, length int64, injected, id []byte,
	d *faults.Decision, expect bool) (bool, error) {
	if expect && kind != wire.None && len(c.dr.Buf) == 0 {
		// The client holds its body for an interim answer that upstream will never send
		// (upstream never sees this request): give it ourselves, or both sides wait.
		c.dout.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		if err := c.dout.Flush(); err != nil {
			return false, err
		}
	}
	if err := c.dr.CopyBody(kind, length, wire.Discard()); err != nil { // never held
		return false, err
	}
	if err := c.sendWhole(injected); err != nil {
		return false, err
	}
	c.p.report(id, d)
	return c.relayResponse(false)
}
