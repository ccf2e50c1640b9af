// Package wire is HTTP/1.1 framing on raw connections: just enough to relay Runtime API
// messages byte for byte. net/http is not used on the data path because it re-serialises
// headers (case, order, duplicates) and buffers bodies; here a message is relayed as the
// bytes that arrived, only its head is looked at (framing and a few named headers), and
// output is flushed before every blocking read, so streamed responses flow as they are written.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// RecvSize is a connection's read buffer, and so what one read asks for. Bodies longer than
// what the buffer holds pass through it piece by piece as they arrive (never held whole), so a
// connection costs this much however large its messages; socat relays with 8 KiB.
const RecvSize = 64 * 1024

// MaxHead bounds a message head. awslambdaric sends a handler error's X-Ray cause as a header
// of up to 1 MiB; a smaller limit would drop the runtime's connection for a long error message.
const MaxHead = 2 * 1024 * 1024

// ErrClosed means the peer closed the connection before (or between) messages.
var ErrClosed = errors.New("the peer closed the connection")

// ErrMalformed marks a message this relay cannot frame; its text never holds body bytes.
var ErrMalformed = errors.New("malformed HTTP message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Kind is how the body after a head ends.
type Kind int

// The ways a body can be framed.
const (
	None    Kind = iota // no body
	Length              // exactly Content-Length bytes
	Chunked             // chunked transfer coding, trailers included
	Close               // until the connection closes (responses only)
)

// Reader is the reading side of a connection: one buffer of RecvSize, reused for every message,
// and Buf, the bytes received but not yet consumed (a window of it). A head from ReadHead is a
// copy, valid until the next ReadHead. Body bytes are handed to an Out as slices of the buffer,
// valid until the next read from this Reader: each Copy* flushes its Out before it reads again,
// and a caller flushes (or drops) what it was handed before it reads this Reader again.
type Reader struct {
	Conn  net.Conn
	Buf   []byte
	base  []byte // the buffer (len == cap) that Buf is a window of
	head  []byte // the last head, copied out so that the buffer can be reused under it
	lower []byte // that head in lower case (LowerHead)
}

// NewReader reads from c.
func NewReader(c net.Conn) *Reader { return &Reader{Conn: c} }

// fill reads once more into Buf; out is flushed first, so no byte waits while we block.
func (r *Reader) fill(out *Out) error {
	if out != nil {
		if err := out.Flush(); err != nil {
			return err
		}
	}
	if len(r.Buf) == 0 || cap(r.Buf)-len(r.Buf) < RecvSize/4 {
		r.makeRoom(len(r.Buf) + RecvSize/4)
	}
	n, err := r.Conn.Read(r.Buf[len(r.Buf):cap(r.Buf)])
	r.Buf = r.Buf[:len(r.Buf)+n]
	if n > 0 {
		return nil
	}
	return readError(err)
}

// makeRoom moves the unconsumed bytes (few: the start of the next message) to the front of the
// buffer, so that Buf can grow to need bytes. Only a head longer than the buffer (a large X-Ray
// cause) makes a larger one, doubling; the next message goes back to RecvSize.
func (r *Reader) makeRoom(need int) {
	size := RecvSize
	if need > RecvSize {
		size = max(need, 2*len(r.base))
	}
	if len(r.base) < need || (need <= RecvSize && len(r.base) != RecvSize) {
		r.base = make([]byte, size)
	}
	n := copy(r.base, r.Buf) // may overlap: copy is a memmove
	r.Buf = r.base[:n]
}

// Await reads until at least n bytes are buffered, n at most RecvSize (a body short enough to
// be held whole); it reads no further than n, so the buffer does not grow.
func (r *Reader) Await(n int) error {
	if cap(r.Buf) < n {
		r.makeRoom(n)
	}
	for len(r.Buf) < n {
		got, err := r.Conn.Read(r.Buf[len(r.Buf):n])
		r.Buf = r.Buf[:len(r.Buf)+got]
		if got == 0 {
			return readError(err)
		}
	}
	return nil
}

func readError(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return ErrClosed
	}
	return err
}

// consume takes the first n buffered bytes.
func (r *Reader) consume(n int) []byte {
	taken := r.Buf[:n:n]
	r.Buf = r.Buf[n:]
	return taken
}

// ReadHead returns the next message head, blank line included; ErrClosed at end of stream
// (what did arrive stays in Buf: it tells a clean close from half a message).
func (r *Reader) ReadHead() ([]byte, error) {
	for searched := 0; ; {
		if i := bytes.Index(r.Buf[searched:], []byte("\r\n\r\n")); i >= 0 {
			n := searched + i + 4
			if cap(r.head) > RecvSize && n <= RecvSize { // a long head's copies are let go
				r.head, r.lower = nil, nil
			}
			r.head = append(r.head[:0], r.consume(n)...)
			return r.head[:n:n], nil
		}
		if len(r.Buf) > MaxHead {
			return nil, malformed("message head longer than %d bytes", MaxHead)
		}
		searched = max(0, len(r.Buf)-3)
		if err := r.fill(nil); err != nil {
			return nil, err
		}
	}
}

// LowerHead is the last head in ASCII lower case, byte for byte (an offset in one is the same
// header in the other), for finding headers by name; valid as long as that head. Computed in a
// buffer reused from head to head: no allocation per message.
func (r *Reader) LowerHead() []byte {
	r.lower = append(r.lower[:0], r.head...)
	for i, b := range r.lower {
		if 'A' <= b && b <= 'Z' {
			r.lower[i] = b + ('a' - 'A')
		}
	}
	return r.lower
}

func (r *Reader) readLine(out *Out) ([]byte, error) {
	for searched := 0; ; {
		if i := bytes.Index(r.Buf[searched:], []byte("\r\n")); i >= 0 {
			return r.consume(searched + i + 2), nil
		}
		if len(r.Buf) > MaxHead {
			return nil, malformed("chunk-size or trailer line too long")
		}
		searched = max(0, len(r.Buf)-1)
		if err := r.fill(out); err != nil {
			return nil, err
		}
	}
}

// CopyExact copies exactly n body bytes to out, through the buffer as they arrive.
func (r *Reader) CopyExact(n int64, out *Out) error {
	for {
		if take := min(n, int64(len(r.Buf))); take > 0 {
			out.Write(r.consume(int(take)))
			n -= take
		}
		if n == 0 {
			return nil
		}
		if err := r.fill(out); err != nil {
			return err
		}
	}
}

// CopyChunked copies a chunked body, chunk-size lines, extensions and trailers unchanged.
func (r *Reader) CopyChunked(out *Out) error {
	for {
		line, err := r.readLine(out)
		if err != nil {
			return err
		}
		out.Write(line)
		sizeText := line[:len(line)-2]
		if i := bytes.IndexByte(sizeText, ';'); i >= 0 {
			sizeText = sizeText[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil || size < 0 { // the "line" may be body bytes: never put them in a log
			return malformed("malformed chunk-size line in a chunked body")
		}
		if size == 0 {
			return r.copyTrailers(out)
		}
		if err := r.CopyExact(size+2, out); err != nil {
			return err
		}
	}
}

func (r *Reader) copyTrailers(out *Out) error {
	for {
		line, err := r.readLine(out)
		if err != nil {
			return err
		}
		out.Write(line)
		if len(line) == 2 {
			return nil
		}
	}
}

// CopyUntilClose copies a body delimited by the connection closing (HTTP/1.0 style).
func (r *Reader) CopyUntilClose(out *Out) error {
	for {
		out.Write(r.consume(len(r.Buf)))
		err := r.fill(out)
		if errors.Is(err, ErrClosed) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// CopyBody copies the body framed as kind (length bytes for Length) to out.
func (r *Reader) CopyBody(kind Kind, length int64, out *Out) error {
	switch kind {
	case Length:
		return r.CopyExact(length, out)
	case Chunked:
		return r.CopyChunked(out)
	case Close:
		return r.CopyUntilClose(out)
	}
	return nil
}

// Out collects bytes for one connection and sends them with one writev per flush; with a nil
// Conn it keeps them instead (Collected), for the small answers of the Extensions API, or drops
// them (Discard), for a body the proxy replaces.
type Out struct {
	Conn      net.Conn
	Sent      int64 // bytes flushed so far: tells the proxy whether a 502 can still be sent
	parts     net.Buffers
	pending   net.Buffers // what WriteTo consumes: a field, so that no flush allocates
	collected []byte
	discard   bool
}

// NewOut writes to c; NewOut(nil) collects.
func NewOut(c net.Conn) *Out { return &Out{Conn: c} }

// Discard is an Out that drops what it is given, holding none of it.
func Discard() *Out { return &Out{discard: true} }

// Write queues p (not copied unless collecting: p must stay unchanged until Flush).
func (o *Out) Write(p []byte) {
	if len(p) == 0 || o.discard {
		return
	}
	if o.Conn == nil {
		o.collected = append(o.collected, p...)
		return
	}
	o.parts = append(o.parts, p)
}

// Flush sends what is queued.
func (o *Out) Flush() error {
	if o.Conn == nil || len(o.parts) == 0 {
		return nil
	}
	o.pending = o.parts
	n, err := o.pending.WriteTo(o.Conn)
	o.Sent += n
	clear(o.parts[:cap(o.parts)])
	o.parts, o.pending = o.parts[:0], nil
	return err
}

// Collected is what a collecting Out was given.
func (o *Out) Collected() []byte { return o.collected }

// Header returns the value of header name (lower case) in head, or nil. lower is head in lower
// case, computed once per message.
func Header(head, lower []byte, name string) []byte {
	start := bytes.Index(lower, []byte("\r\n"+name+":"))
	if start < 0 {
		return nil
	}
	start += len(name) + 3
	end := bytes.Index(lower[start:], []byte("\r\n"))
	if end < 0 {
		return nil
	}
	return bytes.TrimSpace(head[start : start+end])
}

// Status is a response head's status code as three bytes ("200"), or "" if it has none.
func Status(head []byte) string {
	if len(head) < 12 {
		return ""
	}
	return string(head[9:12])
}

// Frame says how the message after head ends, and whether the connection stays open after it.
func Frame(head, lower []byte, isResponse bool, requestMethod string) (Kind, int64, bool, error) {
	keep := true
	firstLine := lower
	if i := bytes.Index(lower, []byte("\r\n")); i >= 0 {
		firstLine = lower[:i]
	}
	if bytes.Contains(lower, []byte("\r\nconnection:")) || bytes.Contains(firstLine, []byte("http/1.0")) {
		keep = keepsAlive(head, lower)
	}
	if isResponse {
		status := Status(head)
		if status == "" || status[0] == '1' || status == "204" || status == "304" || requestMethod == "HEAD" {
			return None, 0, keep, nil
		}
	}
	if bytes.Contains(lower, []byte("\r\ntransfer-encoding:")) &&
		bytes.HasSuffix(Header(lower, lower, "transfer-encoding"), []byte("chunked")) {
		return Chunked, 0, keep, nil
	}
	if value := Header(head, lower, "content-length"); value != nil {
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			return None, 0, false, malformed("invalid Content-Length %q", value)
		}
		return Length, n, keep, nil
	}
	if isResponse {
		return Close, 0, false, nil
	}
	return None, 0, keep, nil
}

func keepsAlive(head, lower []byte) bool {
	value := Header(lower, lower, "connection")
	firstLine := head
	if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
		firstLine = head[:i]
	}
	if bytes.HasPrefix(firstLine, []byte("HTTP/1.0")) || bytes.HasSuffix(firstLine, []byte("HTTP/1.0")) {
		return string(value) == "keep-alive"
	}
	return string(value) != "close"
}

// Connect opens a TCP connection to host:port with Nagle off (else ~40 ms per exchange).
func Connect(address string, timeout time.Duration) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	tcp := c.(*net.TCPConn)
	_ = tcp.SetNoDelay(true)
	return tcp, nil
}

// HeaderField is one header of a request this package builds, sent in the order given.
type HeaderField struct{ Name, Value string }

// BuildRequest is a whole request with a Host header, the headers given and Content-Length.
func BuildRequest(method, path, host string, body []byte, headers []HeaderField) []byte {
	var b bytes.Buffer
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, h := range headers {
		b.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// Request sends one request on a fresh connection and returns the status, head and body; for
// the Extensions API calls. A zero timeout waits as long as the server takes (the event long
// poll); the connection attempt itself always has a deadline.
func Request(address, method, path string, body []byte, headers []HeaderField,
	timeout time.Duration) (int, []byte, []byte, error) {
	c, err := Connect(address, 5*time.Second)
	if err != nil {
		return 0, nil, nil, err
	}
	defer c.Close()
	if timeout > 0 {
		_ = c.SetDeadline(time.Now().Add(timeout))
	}
	if _, err := c.Write(BuildRequest(method, path, address, body, headers)); err != nil {
		return 0, nil, nil, err
	}
	r := NewReader(c)
	head, err := r.ReadHead()
	if err != nil {
		return 0, nil, nil, err
	}
	lower := r.LowerHead()
	kind, length, _, err := Frame(head, lower, true, method)
	if err != nil {
		return 0, head, nil, err
	}
	sink := NewOut(nil)
	if err := r.CopyBody(kind, length, sink); err != nil {
		return 0, head, nil, err
	}
	status, _ := strconv.Atoi(Status(head))
	return status, head, sink.Collected(), nil
}

// IsReset reports a connection reset by the peer (the keep-alive race's other face).
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Peek waits until at least one byte is buffered (or the peer closes), consuming nothing.
func (r *Reader) Peek() error {
	if len(r.Buf) > 0 {
		return nil
	}
	return r.fill(nil)
}

// Unread puts head back in front of what is buffered (a copy: head may be this Reader's own).
func (r *Reader) Unread(head []byte) {
	fresh := make([]byte, 0, max(RecvSize, len(head)+len(r.Buf)+RecvSize/4))
	fresh = append(append(fresh, head...), r.Buf...)
	r.base, r.Buf = fresh[:cap(fresh)], fresh
}
