// Package faults is the per-invocation decision (does this invocation get a fault, and which)
// and the payloads injected. Pure functions of the configuration, the clock and a random draw,
// so the proxy stays a plain relay and every rule here is table-tested without sockets. The
// payloads are byte for byte what awslambdaric and an API Gateway proxy integration produce,
// so callers cannot tell an injected failure from a genuine one.
package faults

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"lambdachaos/internal/config"
	"lambdachaos/internal/pyjson"
	"lambdachaos/internal/wire"
)

// ErrorTypeHeader is the header a runtime sets on /error; Lambda reports it as the error type.
const ErrorTypeHeader = "Lambda-Runtime-Function-Error-Type"

// XRayCauseHeader carries the exception awslambdaric describes for X-Ray with each error.
const XRayCauseHeader = "Lambda-Runtime-Function-XRay-Error-Cause"

// Decision is the fault one invocation receives.
type Decision struct {
	Fault            string // "latency" | "error" | "response"
	DelayMs          int64  // latency added before the handler receives the event
	PreventExecution bool   // answer without running the handler
}

// Draw returns a uniform float64 in [0, 1).
type Draw func() float64

// Decide rolls the dice for one invocation; nil means "pass it through untouched". The draws
// happen in the Python layer's order (percentage, then jitter, each only when it matters), so
// a seeded run replays the same decisions as it did under the Python layer.
func Decide(c *config.Config, now time.Time, draw Draw) *Decision {
	if c.FaultType == "" {
		return nil
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return nil
	}
	if c.Percentage < 100 && draw()*100.0 >= c.Percentage {
		return nil
	}
	if c.FaultType == "latency" {
		var jitter int64
		if c.LatencyJitterMs > 0 {
			jitter = int64(draw() * float64(c.LatencyJitterMs+1))
		}
		return &Decision{Fault: "latency", DelayMs: c.LatencyMs + jitter}
	}
	return &Decision{Fault: c.FaultType, PreventExecution: c.PreventExecution}
}

// Header is one header of an injected request, in the order it is sent.
type Header = wire.HeaderField

// ErrorResult is the body and headers of an injected /error post, exactly as awslambdaric
// sends them: its make_error keys in its order, and its make_xray_fault in a header (ASCII, so
// the header cannot be split by the message).
func ErrorResult(c *config.Config, requestID, workingDirectory string) ([]byte, []Header) {
	var body strings.Builder
	body.WriteString(`{"errorMessage": `)
	pyjson.String(&body, c.ErrorMessage)
	body.WriteString(`, "errorType": `)
	pyjson.String(&body, c.ErrorType)
	body.WriteString(`, "requestId": `)
	pyjson.String(&body, requestID)
	body.WriteString(`, "stackTrace": []}`)
	var cause strings.Builder
	cause.WriteString(`{"working_directory": `)
	pyjson.String(&cause, workingDirectory)
	cause.WriteString(`, "exceptions": [{"message": `)
	pyjson.String(&cause, c.ErrorMessage)
	cause.WriteString(`, "type": `)
	pyjson.String(&cause, c.ErrorType)
	cause.WriteString(`, "stack": []}], "paths": []}`)
	return []byte(body.String()), []Header{
		{Name: "Content-Type", Value: "application/json"},
		{Name: ErrorTypeHeader, Value: headerSafe(c.ErrorType)},
		{Name: XRayCauseHeader, Value: cause.String()},
	}
}

// ReplacementResult is the body and headers of an injected /response: an API Gateway proxy
// integration response whose Content-Type says whether the configured body is JSON.
func ReplacementResult(c *config.Config) ([]byte, []Header) {
	contentType := "text/plain"
	if isJSON(c.ResponseBody) {
		contentType = "application/json"
	}
	var body strings.Builder
	body.WriteString(`{"statusCode": ` + strconv.Itoa(c.ResponseStatusCode))
	body.WriteString(`, "headers": {"Content-Type": "` + contentType + `"}, "body": `)
	pyjson.String(&body, c.ResponseBody)
	body.WriteString(`, "isBase64Encoded": false}`)
	return []byte(body.String()), []Header{{Name: "Content-Type", Value: "application/json"}}
}

// isJSON is Python's "json.loads succeeds": Go's grammar plus Python's NaN and Infinity.
func isJSON(text string) bool {
	switch strings.TrimSpace(text) {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	return json.Valid([]byte(text))
}

// headerSafe keeps only printable ASCII: an error type travels in an HTTP header.
func headerSafe(value string) string {
	var b strings.Builder
	for _, r := range value {
		if r >= 32 && r < 127 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "ChaosInjectedError"
	}
	return b.String()
}
