package proxy

// One invocation at 0 %: /next with a 1 KB event and the 1 KB result posted, on one kept-alive
// runtime connection. The fake upstream and runtime allocate nothing per invocation, so what
// is allocated is the proxy's own. Profile with
//
//	go test ./internal/proxy -run '^$' -bench PassThrough -benchmem -cpuprofile cpu.out -memprofile mem.out

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"lambdachaos/internal/config"
)

// readMessage reads one message with a Content-Length body into buf; false at end of stream.
func readMessage(c net.Conn, buf []byte) ([]byte, bool) {
	n := 0
	for {
		if end := bytes.Index(buf[:n], []byte("\r\n\r\n")); end >= 0 {
			length := 0
			if at := bytes.Index(buf[:end], []byte("Content-Length: ")); at >= 0 {
				digits := buf[at+16 : at+16+bytes.IndexByte(buf[at+16:end+2], '\r')]
				length, _ = strconv.Atoi(string(digits))
			}
			for n < end+4+length {
				got, err := c.Read(buf[n:])
				if err != nil {
					return nil, false
				}
				n += got
			}
			return buf[:end], true
		}
		got, err := c.Read(buf[n:])
		if err != nil {
			return nil, false
		}
		n += got
	}
}

func benchUpstream(b testing.TB, event []byte) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	accepted := []byte("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1<<20)
				for {
					head, ok := readMessage(c, buf)
					if !ok {
						return
					}
					answer := accepted
					if bytes.HasPrefix(head, []byte("GET ")) {
						answer = event
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l
}

// passThrough starts a proxy at 0 % between a fake upstream and a runtime connection, and
// returns one invocation through it.
func passThrough(b testing.TB) func() {
	body := bytes.Repeat([]byte("x"), 1024)
	event := append([]byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"+
		"Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n"+
		"Lambda-Runtime-Deadline-Ms: 1542409706888\r\nContent-Length: %d\r\n\r\n", len(body))), body...)
	result := append([]byte(fmt.Sprintf("POST /2018-06-01/runtime/invocation/"+
		"8476a536-e9f4-11e8-9739-2dfe598c3fcd/response HTTP/1.1\r\nHost: 127.0.0.1:9140\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))), body...)
	nextRequest := []byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9140\r\n" +
		"User-Agent: aws-lambda-ric\r\n\r\n")
	l := benchUpstream(b, event)
	b.Cleanup(func() { l.Close() })
	_, _, c := start(b, &upstream{l: l}, config.Config{FaultType: "latency", LatencyMs: 1000}, nil)
	_ = c.SetDeadline(time.Time{}) // a benchmark may run longer than a test's deadline
	buf := make([]byte, 1<<20)
	invoke := func() {
		for _, request := range [][]byte{nextRequest, result} {
			if _, err := c.Write(request); err != nil {
				b.Fatal(err)
			}
			if _, ok := readMessage(c, buf); !ok {
				b.Fatal("the proxy closed the connection")
			}
		}
	}
	invoke() // the connections are open and every buffer allocated
	return invoke
}

func BenchmarkInvocationPassThrough(b *testing.B) {
	invoke := passThrough(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		invoke()
	}
}

// Nothing is allocated per pass-through invocation, so the garbage collector never runs and
// the heap does not grow between invocations (each head was lowered, each method copied, each
// flush and each held request allocated: 12 allocations per invocation).
func TestAPassThroughInvocationAllocatesNothing(t *testing.T) {
	if allocs := testing.AllocsPerRun(200, passThrough(t)); allocs > 0.5 {
		t.Errorf("%.1f allocations per invocation; want none", allocs)
	}
}
