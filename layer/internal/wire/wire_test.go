package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
)

func TestFrame(t *testing.T) {
	cases := []struct {
		head     string
		response bool
		method   string
		kind     Kind
		length   int64
		keep     bool
	}{
		{"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", false, "", None, 0, true},
		{"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n", false, "", Length, 5, true},
		{"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, "", Chunked, 0, true},
		{"POST /x HTTP/1.1\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, "", Length, 1, false},
		{"GET /x HTTP/1.0\r\n\r\n", false, "", None, 0, false},
		{"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, "", None, 0, true},
		{"HTTP/1.1 200 OK\r\n\r\n", true, "GET", Close, 0, false},
		{"HTTP/1.1 204 No Content\r\n\r\n", true, "GET", None, 0, true},
		{"HTTP/1.1 100 Continue\r\n\r\n", true, "POST", None, 0, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, "HEAD", None, 0, true},
	}
	for _, c := range cases {
		head := []byte(c.head)
		kind, length, keep, err := Frame(head, bytes.ToLower(head), c.response, c.method)
		if err != nil || kind != c.kind || length != c.length || keep != c.keep {
			t.Errorf("%q: %v %d %v %v", c.head, kind, length, keep, err)
		}
	}
	head := []byte("POST /x HTTP/1.1\r\nContent-Length: lots\r\n\r\n")
	if _, _, _, err := Frame(head, bytes.ToLower(head), false, ""); !errors.Is(err, ErrMalformed) {
		t.Errorf("a bad Content-Length: %v", err)
	}
}

func copyChunked(t *testing.T, body string) (string, error) {
	t.Helper()
	a, b := net.Pipe()
	go func() { _, _ = a.Write([]byte(body)); a.Close() }()
	out := NewOut(nil)
	err := NewReader(b).CopyChunked(out)
	return string(out.Collected()), err
}

func TestChunkedBodiesAreCopiedUnchangedTrailersIncluded(t *testing.T) {
	body := "5\r\nfirst\r\n6;ext=1\r\nsecond\r\n0\r\nX-T: 1\r\n\r\n"
	if got, err := copyChunked(t, body+"next"); got != body || err != nil {
		t.Errorf("%q %v", got, err)
	}
}

func TestABadChunkSizeLineIsMalformedAndItsBytesAreNotInTheError(t *testing.T) {
	_, err := copyChunked(t, "3\r\ncustomer-secret\r\n0\r\n\r\n")
	if !errors.Is(err, ErrMalformed) || bytes.Contains([]byte(err.Error()), []byte("secret")) {
		t.Errorf("%v", err)
	}
}

// A body longer than the read buffer passes through that one buffer as it arrives: relaying
// 6 MB allocates about one buffer, not the body (nor a buffer per piece).
func TestALongBodyStreamsThroughOneBufferNeverHeldWhole(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 6*1024*1024/16)
	message := append([]byte("POST /r HTTP/1.1\r\nContent-Length: 6291456\r\n\r\n"), body...)
	in, inPeer := net.Pipe()
	out, outPeer := net.Pipe()
	go func() { _, _ = inPeer.Write(message); inPeer.Close() }()
	received := make(chan []byte, 1)
	sink := make([]byte, len(message)) // allocated before the count starts
	go func() {
		n, _ := io.ReadFull(outPeer, sink)
		received <- sink[:n]
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, w := NewReader(in), NewOut(out)
	head, err := r.ReadHead()
	if err == nil {
		w.Write(head)
		err = r.CopyExact(int64(len(body)), w)
	}
	if err == nil {
		err = w.Flush()
	}
	runtime.ReadMemStats(&after)
	if got := <-received; err != nil || !bytes.Equal(got, message) {
		t.Fatalf("relayed %d of %d bytes: %v", len(got), len(message), err)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 2*RecvSize {
		t.Errorf("relaying 6 MB allocated %d bytes; want at most %d", allocated, 2*RecvSize)
	}
	if len(r.base) != RecvSize {
		t.Errorf("the read buffer grew to %d bytes", len(r.base))
	}
}

// A body that fits the buffer, arriving in pieces after its head, is awaited in that buffer.
func TestAwaitHoldsABodyOfAlmostTheBufferWithoutGrowingIt(t *testing.T) {
	head := []byte("POST /r HTTP/1.1\r\nContent-Length: 61440\r\n\r\n")
	body := bytes.Repeat([]byte("b"), 61440)
	a, b := net.Pipe()
	go func() {
		_, _ = a.Write(append(head, body[:50000]...))
		_, _ = a.Write(body[50000:])
	}()
	r := NewReader(b)
	if _, err := r.ReadHead(); err != nil {
		t.Fatal(err)
	}
	if err := r.Await(len(body)); err != nil || !bytes.Equal(r.Buf[:len(body)], body) {
		t.Fatalf("awaited %d bytes: %v", len(r.Buf), err)
	}
	if len(r.base) != RecvSize {
		t.Errorf("the read buffer grew to %d bytes", len(r.base))
	}
}
