package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"lambdachaos/internal/config"
	"lambdachaos/internal/faults"
	"lambdachaos/internal/metrics"
)

// upstream is a Runtime API that answers /next with its events in order and records the path
// of every other request.
type upstream struct {
	l      net.Listener
	events chan string
	mu     sync.Mutex
	posts  []string
}

func newUpstream(t *testing.T, ids ...string) *upstream {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{l: l, events: make(chan string, len(ids))}
	for _, id := range ids {
		u.events <- id
	}
	go u.accept()
	t.Cleanup(func() { l.Close() })
	return u
}

func (u *upstream) accept() {
	for {
		c, err := u.l.Accept()
		if err != nil {
			return
		}
		go u.serve(c)
	}
}

func (u *upstream) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		length := 0
		for {
			h, _ := r.ReadString('\n')
			if h == "\r\n" || h == "" {
				break
			}
			fmt.Sscanf(strings.ToLower(h), "content-length: %d", &length)
		}
		_, _ = io.CopyN(io.Discard, r, int64(length))
		path := strings.Fields(line)[1]
		if strings.HasSuffix(path, "/next") {
			id := <-u.events
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: %s\r\nContent-Length: 2\r\n\r\n{}", id)
			continue
		}
		u.mu.Lock()
		u.posts = append(u.posts, path)
		u.mu.Unlock()
		fmt.Fprint(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
	}
}

func (u *upstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.posts...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, u *upstream, cfg config.Config, adjust func(*Proxy)) (*Proxy, *syncBuffer, net.Conn) {
	t.Helper()
	log := &syncBuffer{}
	p := New(&cfg, u.l.Addr().String(), metrics.Logger{W: log})
	if adjust != nil {
		adjust(p)
	}
	port, err := p.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve()
	t.Cleanup(p.Close)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return p, log, c
}

// exchange sends a request and returns the response head (the test bodies are tiny).
func exchange(t *testing.T, c net.Conn, request string) string {
	t.Helper()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

const next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"

func post(id, kind string) string {
	return "POST /2018-06-01/runtime/invocation/" + id + "/" + kind +
		" HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n\"fine\""
}

func TestLatencySleepsTheConfiguredDelayPlusTheDrawnJitter(t *testing.T) {
	u := newUpstream(t, "r1")
	var slept []time.Duration
	_, _, c := start(t, u, config.Config{FaultType: "latency", LatencyMs: 300, LatencyJitterMs: 100, Percentage: 100},
		func(p *Proxy) {
			p.Sleep = func(d time.Duration) { slept = append(slept, d) }
			p.Draw = func() float64 { return 0.5 }
		})
	if got := exchange(t, c, next); !strings.Contains(got, "r1") {
		t.Fatalf("event: %q", got)
	}
	if len(slept) != 1 || slept[0] != 350*time.Millisecond {
		t.Errorf("slept %v", slept)
	}
}

func TestADelayBeyondAnyTimerIsCappedNotOverflowed(t *testing.T) {
	var slept []time.Duration
	p := &Proxy{Sleep: func(d time.Duration) { slept = append(slept, d) }}
	p.sleepMs(1 << 62)
	if len(slept) != 1 || slept[0] != maxDelay {
		t.Errorf("slept %v", slept)
	}
}

func TestAPanicInTheFaultLogicPassesTheInvocationThroughUnchanged(t *testing.T) {
	u := newUpstream(t, "r1")
	_, log, c := start(t, u, config.Config{FaultType: "error", Percentage: 100, PreventExecution: true},
		func(p *Proxy) {
			p.Decide = func(*config.Config, time.Time, faults.Draw) *faults.Decision {
				panic("bug in the fault logic")
			}
		})
	if got := exchange(t, c, next); !strings.Contains(got, "Lambda-Runtime-Aws-Request-Id: r1") {
		t.Fatalf("event: %q", got)
	}
	exchange(t, c, post("r1", "response"))
	if got := u.seen(); len(got) != 1 || !strings.HasSuffix(got[0], "/r1/response") {
		t.Errorf("upstream saw %v", got)
	}
	if !strings.Contains(log.String(), "fault decision failed, invocation passed through unchanged: bug in the fault logic") {
		t.Errorf("log: %q", log.String())
	}
}

func TestAnInjectedResultThatCannotBeBuiltLetsTheInvocationThrough(t *testing.T) {
	for _, prevent := range []bool{true, false} {
		t.Run(fmt.Sprint("prevent=", prevent), func(t *testing.T) {
			u := newUpstream(t, "r1")
			_, log, c := start(t, u, config.Config{FaultType: "error", Percentage: 100, PreventExecution: prevent},
				func(p *Proxy) {
					p.ErrorResult = func(*config.Config, string, string) ([]byte, []faults.Header) {
						panic("cannot encode")
					}
				})
			if got := exchange(t, c, next); !strings.Contains(got, "r1") { // the handler gets its event
				t.Fatalf("event: %q", got)
			}
			exchange(t, c, post("r1", "response"))
			if got := u.seen(); len(got) != 1 || !strings.HasSuffix(got[0], "/r1/response") {
				t.Errorf("upstream saw %v", got) // and its own result goes out
			}
			if !strings.Contains(log.String(), "cannot build the injected error, invocation passed through: cannot encode") {
				t.Errorf("log: %q", log.String())
			}
		})
	}
}

func TestAPanicWritingTheFaultRecordCostsOnlyTheRecord(t *testing.T) {
	u := newUpstream(t, "r1")
	_, _, c := start(t, u, config.Config{FaultType: "error", Percentage: 100},
		func(p *Proxy) { p.Log = metrics.Logger{W: panicWriter{}} })
	exchange(t, c, next)
	if got := exchange(t, c, post("r1", "response")); !strings.HasPrefix(got, "HTTP/1.1 202") {
		t.Errorf("answer %q", got)
	}
	if got := u.seen(); len(got) != 1 || !strings.HasSuffix(got[0], "/r1/error") {
		t.Errorf("upstream saw %v", got)
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("stdout is gone") }

// flakyListener fails its first Accept, as an exhausted process (EMFILE) would.
type flakyListener struct {
	net.Listener
	failed bool
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if !f.failed {
		f.failed = true
		return nil, errors.New("accept4: too many open files")
	}
	return f.Listener.Accept()
}

func TestAnAcceptErrorDoesNotStopTheProxyAccepting(t *testing.T) {
	u := newUpstream(t, "r1")
	cfg := config.Config{FaultType: "latency", Percentage: 0}
	p := New(&cfg, u.l.Addr().String(), metrics.Logger{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go p.serve(&flakyListener{Listener: l})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if got := exchange(t, c, next); !strings.Contains(got, "r1") {
		t.Errorf("event: %q", got)
	}
}

func TestMarksAreBoundedAndClaimedOnlyByTheirOwnRequestID(t *testing.T) {
	p := New(&config.Config{}, "", metrics.Logger{})
	for i := range maxPending + 1 {
		p.remember([]byte(fmt.Sprint("id-", i)), &faults.Decision{Fault: "error"})
	}
	if len(p.pending) != 1 {
		t.Errorf("%d marks kept", len(p.pending))
	}
	if d, _ := p.claim([]byte("/2018-06-01/runtime/invocation/id-0/response")); d != nil {
		t.Error("claimed a mark that was dropped")
	}
	last := fmt.Sprint("id-", maxPending)
	if d, id := p.claim([]byte("/2018-06-01/runtime/invocation/" + last + "/error")); d == nil || string(id) != last {
		t.Error("the kept mark was not claimed")
	}
	if d, _ := p.claim([]byte("/2018-06-01/runtime/invocation/" + last + "/error")); d != nil {
		t.Error("a mark was claimed twice")
	}
	if p.remember(nil, &faults.Decision{}) {
		t.Error("an invocation without a request id was marked")
	}
}
