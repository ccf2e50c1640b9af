// Package metrics is what the layer tells the operator: one JSON line per injected fault that
// is at once a structured log record (request id, fault, injected ms, experiment id; never
// the payload, which may hold customer data) and a CloudWatch embedded-metric-format document,
// so CloudWatch derives InjectedFaults and InjectedMilliseconds from the log with no API call.
// Diagnostics are plain lines prefixed "[lambda-chaos]". Every line is one write, so lines
// from concurrent invocations never interleave.
package metrics

import (
	"io"
	"strconv"
	"strings"

	"lambdachaos/internal/pyjson"
)

// LogPrefix starts every diagnostic line, for grep.
const LogPrefix = "[lambda-chaos]"

// Fault is one injected fault, as logged.
type Fault struct {
	RequestID        string
	Fault            string
	InjectedMs       int64
	Namespace        string
	FunctionName     string
	ExperimentID     string
	PreventExecution bool
	TimestampMs      int64
}

// Logger writes the layer's lines to one writer (the extension's stdout, as Lambda collects).
type Logger struct{ W io.Writer }

// Record is the EMF line of f, with the fields in the Python layer's order.
func Record(f Fault) string {
	var b strings.Builder
	b.WriteString(`{"_aws":{"Timestamp":` + strconv.FormatInt(f.TimestampMs, 10))
	b.WriteString(`,"CloudWatchMetrics":[{"Namespace":`)
	pyjson.String(&b, f.Namespace)
	b.WriteString(`,"Dimensions":[["FunctionName","FaultType"]],"Metrics":[` +
		`{"Name":"InjectedFaults","Unit":"Count"},` +
		`{"Name":"InjectedMilliseconds","Unit":"Milliseconds"}]}]},`)
	b.WriteString(`"message":"chaos fault injected","FunctionName":`)
	pyjson.String(&b, f.FunctionName)
	b.WriteString(`,"FaultType":`)
	pyjson.String(&b, f.Fault)
	b.WriteString(`,"InjectedFaults":1,"InjectedMilliseconds":` + strconv.FormatInt(f.InjectedMs, 10))
	b.WriteString(`,"requestId":`)
	pyjson.String(&b, f.RequestID)
	b.WriteString(`,"experimentId":`)
	pyjson.String(&b, f.ExperimentID)
	b.WriteString(`,"preventExecution":` + strconv.FormatBool(f.PreventExecution) + "}")
	return b.String()
}

// Emit writes the record of one injected fault.
func (l Logger) Emit(f Fault) { l.line(Record(f)) }

// Log writes one diagnostic line (configuration problems, fail-open events).
func (l Logger) Log(message string) { l.line(LogPrefix + " " + message) }

// line writes s and a newline in one Write; a failing log must never fail an invocation.
func (l Logger) line(s string) {
	defer func() { _ = recover() }()
	if l.W != nil {
		_, _ = l.W.Write([]byte(strings.ToValidUTF8(s, "\uFFFD") + "\n"))
	}
}
