// Package proxy is the Runtime API proxy: it relays every request byte for byte and injects
// faults per invocation.
//
// Routes:
//   - GET …/runtime/invocation/next: where latency is added (before the handler sees the
//     event) and where prevent-execution faults answer upstream themselves and fetch again;
//   - POST …/runtime/invocation/{id}/response|error of an invocation marked for a fault: the
//     handler's result is read and replaced by the injected error or response;
//   - anything else (init/error, unknown paths and methods): relayed unchanged.
//
// Each runtime connection is served by its own goroutine with its own kept-alive upstream
// connection, and the marks are keyed by request id, so N invocations can be in flight at
// once (Lambda Managed Instances): each decided on its own, each result matched to its own
// request id whichever connection carries it, and one delayed invocation holding only its
// own connection. Everything fails open: a panic in the fault logic means "no fault for this
// invocation", an upstream failure is a 502 that says why.
package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"lambdachaos/internal/config"
	"lambdachaos/internal/faults"
	"lambdachaos/internal/metrics"
	"lambdachaos/internal/wire"
)

// maxPending bounds the marks: invocations that timed out never post a result.
const maxPending = 1024

// maxDelay holds an event longer than any Lambda timeout (15 min) by far.
const maxDelay = 24 * time.Hour

// Proxy listens on 127.0.0.1 and forwards to the Runtime API at Upstream ("host:port").
// Decide, Draw, Clock, Sleep and ErrorResult are fields so that tests can force every branch,
// a panic in the fault logic included.
type Proxy struct {
	Cfg          *config.Config
	Upstream     string
	FunctionName string
	TaskRoot     string
	Log          metrics.Logger

	Decide      func(*config.Config, time.Time, faults.Draw) *faults.Decision
	Draw        faults.Draw
	Clock       func() time.Time
	Sleep       func(time.Duration)
	ErrorResult func(c *config.Config, requestID, workingDirectory string) ([]byte, []faults.Header)

	mu       sync.Mutex
	pending  map[string]faults.Decision
	listener net.Listener
}

// New is a proxy for cfg with the production decision, randomness and clock.
func New(cfg *config.Config, upstream string, log metrics.Logger) *Proxy {
	return &Proxy{Cfg: cfg, Upstream: upstream, Log: log, Decide: faults.Decide,
		Draw: rand.Float64, Clock: time.Now, Sleep: time.Sleep, ErrorResult: faults.ErrorResult,
		pending: map[string]faults.Decision{}}
}

// Listen binds 127.0.0.1:port (0: any free port) and returns the port bound.
func (p *Proxy) Listen(port int) (int, error) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return 0, err
	}
	p.listener = l
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Serve accepts connections until the listener is closed.
func (p *Proxy) Serve() { p.serve(p.listener) }

// Close stops accepting.
func (p *Proxy) Close() {
	if p.listener != nil {
		_ = p.listener.Close()
	}
}

func (p *Proxy) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // e.g. out of file descriptors: lose nothing but time, do not spin
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if tcp, ok := c.(*net.TCPConn); ok {
			_ = tcp.SetNoDelay(true)
		}
		go newConn(p, c).run()
	}
}

// --- fault logic, each call fenced so that a panic means "no fault" --------------------------

// decision is this invocation's fault; seeded by its request id when CHAOS_DECISION_SEED is set.
func (p *Proxy) decision(requestID []byte) (d *faults.Decision) {
	defer func() {
		if r := recover(); r != nil {
			p.Log.Log(fmt.Sprintf("fault decision failed, invocation passed through unchanged: %v", r))
			d = nil
		}
	}()
	draw := p.Draw
	if p.Cfg.DecisionSeed != "" && len(requestID) > 0 {
		draw = faults.SeededDraw(p.Cfg.DecisionSeed, requestID)
	}
	return p.Decide(p.Cfg, p.Clock(), draw)
}

func (p *Proxy) remember(requestID []byte, d *faults.Decision) bool {
	if len(requestID) == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) >= maxPending {
		clear(p.pending)
	}
	p.pending[string(requestID)] = *d
	return true
}

func (p *Proxy) hasPending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) > 0
}

// claim takes the mark of a …/invocation/{id}/response|error path, if that invocation has one.
func (p *Proxy) claim(path []byte) (*faults.Decision, []byte) {
	kindAt := lastSlash(path)
	if kindAt < 0 {
		return nil, nil
	}
	if kind := string(path[kindAt+1:]); kind != "response" && kind != "error" {
		return nil, nil
	}
	idAt := lastSlash(path[:kindAt])
	if idAt < 0 {
		return nil, nil
	}
	id := path[idAt+1 : kindAt]
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.pending[string(id)]
	if !ok {
		return nil, nil
	}
	delete(p.pending, string(id))
	return &d, id
}

func lastSlash(b []byte) int { return bytes.LastIndexByte(b, '/') }

func (p *Proxy) report(requestID []byte, d *faults.Decision) {
	defer func() {
		if r := recover(); r != nil {
			p.Log.Log(fmt.Sprintf("could not write the fault record: %v", r))
		}
	}()
	p.Log.Emit(metrics.Fault{RequestID: string(requestID), Fault: d.Fault, InjectedMs: d.DelayMs,
		Namespace: p.Cfg.MetricsNamespace, FunctionName: p.FunctionName,
		ExperimentID: p.Cfg.ExperimentID, PreventExecution: d.PreventExecution,
		TimestampMs: time.Now().UnixMilli()})
}

// sleepMs holds the event; past the deadline the invocation times out, as a slow call would.
func (p *Proxy) sleepMs(ms int64) {
	if ms > 0 {
		p.Sleep(time.Duration(min(ms, maxDelay.Milliseconds())) * time.Millisecond) // no overflow
	}
}

// resultRequest is the /error or /response post that carries an injected result upstream, or
// nil (logged) if it cannot be built: the caller then lets the invocation through.
func (p *Proxy) resultRequest(path, requestID []byte, fault string) (request []byte) {
	defer func() {
		if r := recover(); r != nil {
			p.Log.Log(fmt.Sprintf("cannot build the injected %s, invocation passed through: %v", fault, r))
			request = nil
		}
	}()
	prefix := "/2018-06-01"
	if i := bytes.Index(path, []byte("/runtime/")); i >= 0 {
		prefix = string(path[:i])
	}
	kind := "response"
	body, headers := faults.ReplacementResult(p.Cfg)
	if fault == "error" { // awslambdaric's errors carry the invocation's request id
		kind = "error"
		body, headers = p.ErrorResult(p.Cfg, string(requestID), p.TaskRoot)
	}
	target := prefix + "/runtime/invocation/" + string(requestID) + "/" + kind
	return wire.BuildRequest("POST", target, p.Upstream, body, headers)
}
