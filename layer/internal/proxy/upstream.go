package proxy

// The plumbing under the routes: the upstream connection (kept alive, checked when idle,
// reopened once when upstream closed it first), Expect: 100-continue, and the 502.

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"lambdachaos/internal/wire"
)

// idleCheck: an upstream connection idle longer than this is peeked at before reuse.
const idleCheck = 50 * time.Millisecond

// heldWhole: a request body up to this long is read whole before it goes upstream (it fits the
// read buffer), so it can be sent again if a kept-alive connection turns out closed; a longer
// or chunked body streams through the buffer as it arrives, never held.
const heldWhole = wire.RecvSize

func (c *conn) sendUpstream(head []byte, kind wire.Kind, length int64, expect bool) error {
	if kind == wire.None {
		return c.sendWhole(head)
	}
	if kind == wire.Length && (int64(len(c.dr.Buf)) >= length || (!expect && length <= heldWhole)) {
		// With Expect: 100-continue the rest of a body may wait for an interim answer: streamed.
		if err := c.dr.Await(int(length)); err != nil {
			return err
		}
		body := c.dr.Buf[:length:length]
		c.dr.Buf = c.dr.Buf[length:]
		return c.sendWhole(head, body)
	}
	if err := c.ensureUpstream(); err != nil {
		return err
	}
	// A streamed body cannot be sent twice, so the connection must be known open before it
	// goes: a reused one is peeked at (one non-blocking recvfrom; EOF or stray bytes mean
	// upstream closed it) whatever its idle time, and reopened if closed. That costs about a
	// microsecond against the >= 64 KiB copied. A fresh connection per long body would cost a
	// connect and a socket in TIME_WAIT per invocation, and Lambda would see a new connection
	// for every large result. What remains is a close that upstream starts after the peek,
	// while the body is on its way (Go's net/http has the same window for a body it cannot
	// rewind); Lambda's Runtime API does not close idle connections.
	if c.upReused && !upstreamHealthy(c.up) {
		c.dropUpstream()
		if err := c.ensureUpstream(); err != nil {
			return err
		}
	}
	c.replay = nil
	c.uout.Write(head)
	if expect && len(c.dr.Buf) == 0 {
		if err := c.awaitContinue(); err != nil {
			return err
		}
	}
	if err := c.dr.CopyBody(kind, length, c.uout); err != nil {
		return err
	}
	return c.uout.Flush()
}

type headResult struct {
	head []byte
	err  error
}

// awaitContinue: with "Expect: 100-continue" the client holds its body until an interim
// response, so the head goes upstream now and a "100 Continue" is passed on if it comes
// before the body. Whichever side speaks first wins; the other read is stopped by a deadline
// and what it got is kept.
func (c *conn) awaitContinue() error {
	if err := c.uout.Flush(); err != nil {
		return err
	}
	fromUp := make(chan headResult, 1)
	go func() {
		h, err := c.ur.ReadHead()
		fromUp <- headResult{h, err}
	}()
	fromDown := make(chan error, 1)
	go func() { fromDown <- c.dr.Peek() }()
	select {
	case err := <-fromDown:
		_ = c.up.SetReadDeadline(time.Unix(1, 0))
		r := <-fromUp
		_ = c.up.SetReadDeadline(time.Time{})
		if r.err == nil {
			c.ur.Unread(r.head)
		}
		return err
	case r := <-fromUp:
		if r.err != nil {
			_ = c.down.SetReadDeadline(time.Unix(1, 0))
			<-fromDown
			_ = c.down.SetReadDeadline(time.Time{})
			return r.err
		}
		if strings.HasPrefix(wire.Status(r.head), "1") {
			c.dout.Write(r.head)
			if err := c.dout.Flush(); err != nil {
				return err
			}
		} else { // a final answer before the body: kept for relayResponse
			c.ur.Unread(r.head)
		}
		return <-fromDown
	}
}

func (c *conn) relayResponse(headRequest bool) (bool, error) {
	rhead, err := c.readHead()
	for err == nil && strings.HasPrefix(wire.Status(rhead), "1") {
		c.dout.Write(rhead) // interim (100 Continue): passed on at once
		if err = c.dout.Flush(); err == nil {
			rhead, err = c.ur.ReadHead()
		}
	}
	if err != nil {
		return false, err
	}
	return c.relayBody(rhead, c.ur.LowerHead(), headRequest)
}

func (c *conn) relayBody(rhead, rlower []byte, headRequest bool) (bool, error) {
	method := "GET"
	if headRequest {
		method = "HEAD"
	}
	kind, length, keep, err := wire.Frame(rhead, rlower, true, method)
	if err != nil {
		return false, err
	}
	c.dout.Write(rhead)
	if err := c.ur.CopyBody(kind, length, c.dout); err != nil {
		return false, err
	}
	if err := c.dout.Flush(); err != nil {
		return false, err
	}
	return c.upstreamReusable(kind, keep), nil
}

// upstreamReusable: after a response that closes its connection, the runtime is told the same.
func (c *conn) upstreamReusable(kind wire.Kind, keep bool) bool {
	if kind == wire.Close || !keep {
		c.dropUpstream()
		return false
	}
	c.upUsed = time.Now()
	return true
}

// drainResponse reads and drops upstream's answer to an injected result, logging a refusal.
func (c *conn) drainResponse() error {
	rhead, err := c.readHead()
	if err != nil {
		return err
	}
	kind, length, keep, err := wire.Frame(rhead, c.ur.LowerHead(), true, "POST")
	if err != nil {
		return err
	}
	if err := c.ur.CopyBody(kind, length, wire.Discard()); err != nil {
		return err
	}
	if !strings.HasPrefix(wire.Status(rhead), "2") {
		c.p.Log.Log(fmt.Sprintf("the Runtime API refused an injected result: %q", rhead[:min(12, len(rhead))]))
	}
	c.upstreamReusable(kind, keep)
	return nil
}

// sendWhole sends a request held whole in memory, kept for one resend (see readHead).
func (c *conn) sendWhole(parts ...[]byte) error {
	if err := c.ensureUpstream(); err != nil {
		return err
	}
	c.replay = nil
	if c.upReused {
		c.replay = append(c.held[:0], parts...)
	}
	for _, part := range parts {
		c.uout.Write(part)
	}
	if err := c.uout.Flush(); err != nil {
		return c.resend(err)
	}
	return nil
}

// readHead is the first response head to the request just sent. A kept-alive connection that
// upstream closed before answering (the keep-alive race: the idle check cannot see a close
// still on its way) gets the request again on a fresh connection, once.
func (c *conn) readHead() ([]byte, error) {
	rhead, err := c.ur.ReadHead()
	if err != nil && (errors.Is(err, wire.ErrClosed) || wire.IsReset(err)) {
		if err = c.resend(err); err == nil {
			rhead, err = c.ur.ReadHead()
		}
	}
	c.replay = nil
	return rhead, err
}

// resend sends the held request on a fresh connection, or returns cause if it cannot.
func (c *conn) resend(cause error) error {
	replay := c.replay
	c.replay = nil
	if replay == nil || len(c.ur.Buf) > 0 { // streamed body, fresh connection, or half an answer
		return cause
	}
	c.dropUpstream()
	if err := c.ensureUpstream(); err != nil {
		return err
	}
	for _, part := range replay {
		c.uout.Write(part)
	}
	return c.uout.Flush()
}

func (c *conn) ensureUpstream() error {
	c.upReused = true
	if c.up != nil {
		if time.Since(c.upUsed) < idleCheck || upstreamHealthy(c.up) {
			return nil
		}
		c.dropUpstream()
	}
	up, err := wire.Connect(c.p.Upstream, 5*time.Second)
	if err != nil {
		return err
	}
	c.up, c.ur, c.uout, c.upReused = up, wire.NewReader(up), wire.NewOut(up), false
	return nil
}

// upstreamHealthy peeks (one non-blocking syscall) at an idle connection: the server may have
// closed it, and it is better to find out now than by losing a request.
func upstreamHealthy(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	healthy := false
	var one [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		healthy = errors.Is(err, syscall.EAGAIN) // nothing to read: neither EOF nor stray bytes
		return true
	})
	return healthy
}

func (c *conn) dropUpstream() {
	if c.up != nil {
		_ = c.up.Close()
		c.up, c.ur, c.uout = nil, nil, nil
	}
}

func (c *conn) badGateway(cause error) {
	reason := fmt.Sprintf("lambda-chaos proxy: the Runtime API at %s failed: %v", c.p.Upstream, cause)
	c.p.Log.Log(reason)
	c.dropUpstream()
	_, _ = c.down.Write([]byte(fmt.Sprintf("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(reason), reason)))
}
