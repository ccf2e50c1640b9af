// Package config reads the layer's environment once into a Config. Parsing never fails: a bad
// value means "no fault" plus one problem line naming the variable and the value, because the
// layer must fail open inside a customer's function. The rules and messages are those of
// chaos_layer/config.py, so the automation and the layer accept the same values.
package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"lambdachaos"
	"lambdachaos/internal/pyjson"
)

// Config is one execution environment's fault, immutable after FromEnviron.
type Config struct {
	FaultType          string // "" means pass everything through
	LatencyMs          int64
	LatencyJitterMs    int64
	Percentage         float64
	PreventExecution   bool
	ErrorType          string
	ErrorMessage       string
	ResponseStatusCode int
	ResponseBody       string
	ExpiresAt          time.Time // zero: never
	ExperimentID       string
	ProxyPort          int
	Upstream           string
	MetricsNamespace   string
	DecisionSeed       string
	Problems           []string
}

// Kinds maps every settings key this package reads to the kind settings.json must give it;
// the tests check both against the embedded file.
var Kinds = map[string]string{
	"FAULT_TYPE": "fault_type", "LATENCY_MS": "milliseconds", "LATENCY_JITTER_MS": "milliseconds",
	"INVOCATION_PERCENTAGE": "percentage", "PREVENT_EXECUTION": "boolean", "ERROR_TYPE": "text",
	"ERROR_MESSAGE": "text", "RESPONSE_STATUS_CODE": "status_code", "RESPONSE_BODY": "text",
	"EXPIRES_AT": "utc_time", "EXPERIMENT_ID": "text", "PROXY_PORT": "port",
	"UPSTREAM_RUNTIME_API": "host_port", "METRICS_NAMESPACE": "text", "DECISION_SEED": "text",
}

// Getenv is os.LookupEnv or, in tests, a map's lookup.
type Getenv func(name string) (string, bool)

type reader struct {
	s        *lambdachaos.Settings
	getenv   Getenv
	problems []string
}

// FromEnviron parses the environment. Any bad value of a setting disables the fault.
func FromEnviron(s *lambdachaos.Settings, getenv Getenv) Config {
	r := &reader{s: s, getenv: getenv}
	c := Config{FaultType: r.text("FAULT_TYPE", parseFaultType(s.FaultTypes))}
	c.LatencyMs = r.int("LATENCY_MS", parseNonNegative)
	c.LatencyJitterMs = r.int("LATENCY_JITTER_MS", parseNonNegative)
	c.Percentage = r.float("INVOCATION_PERCENTAGE", parsePercentage)
	c.PreventExecution = r.bool("PREVENT_EXECUTION")
	c.ErrorType = r.orDefault("ERROR_TYPE")
	c.ErrorMessage = r.orDefault("ERROR_MESSAGE")
	c.ResponseStatusCode = int(r.int("RESPONSE_STATUS_CODE", parseStatusCode))
	c.ResponseBody = r.raw("RESPONSE_BODY")
	c.ExpiresAt = r.time("EXPIRES_AT")
	c.ExperimentID = r.raw("EXPERIMENT_ID")
	c.MetricsNamespace = r.orDefault("METRICS_NAMESPACE")
	c.DecisionSeed = strings.TrimSpace(r.raw("DECISION_SEED"))
	c.ProxyPort = int(r.int("PROXY_PORT", parsePort))
	c.Upstream = r.text("UPSTREAM_RUNTIME_API", parseHostPort)
	if c.Upstream == "" {
		c.Upstream, _ = getenv(s.RuntimeAPIVariable())
	}
	if len(r.problems) > 0 {
		c.FaultType = ""
	}
	c.Problems = r.problems
	return c
}

// Active reports whether a fault is configured and not expired at now.
func (c Config) Active(now time.Time) bool {
	return c.FaultType != "" && (c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt))
}

// FormatUTC is the form the automation writes to CHAOS_EXPIRES_AT.
func FormatUTC(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (r *reader) raw(key string) string {
	v, _ := r.getenv(r.s.Name(key))
	return v
}

// orDefault is the value, or the default when unset or empty (names, messages).
func (r *reader) orDefault(key string) string {
	if v := r.raw(key); v != "" {
		return v
	}
	return r.s.DefaultText(key)
}

// parsed runs parse on the stripped value; unset or blank gives ok=false without a problem.
func (r *reader) parsed(key string, parse func(string) (any, error)) (any, bool) {
	raw := r.raw(key)
	text := strings.TrimSpace(raw)
	if text == "" {
		return nil, false
	}
	v, err := parse(text)
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s=%s is invalid: %v; no fault is injected",
			r.s.Name(key), pyjson.Repr(raw), err))
		return nil, false
	}
	return v, true
}

func (r *reader) text(key string, parse func(string) (any, error)) string {
	if v, ok := r.parsed(key, parse); ok {
		return v.(string)
	}
	return r.s.DefaultText(key)
}

func (r *reader) int(key string, parse func(string) (any, error)) int64 {
	if v, ok := r.parsed(key, parse); ok {
		return v.(int64)
	}
	n, _ := strconv.ParseInt(r.s.DefaultText(key), 10, 64)
	return n
}

func (r *reader) float(key string, parse func(string) (any, error)) float64 {
	if v, ok := r.parsed(key, parse); ok {
		return v.(float64)
	}
	f, _ := strconv.ParseFloat(r.s.DefaultText(key), 64)
	return f
}

func (r *reader) bool(key string) bool {
	if v, ok := r.parsed(key, func(s string) (any, error) { return ParseBool(s) }); ok {
		return v.(bool)
	}
	return r.s.DefaultText(key) == "true"
}

func (r *reader) time(key string) time.Time {
	if v, ok := r.parsed(key, func(s string) (any, error) { return ParseUTC(s) }); ok {
		return v.(time.Time)
	}
	return time.Time{}
}

// --- Parsers: each error says what is accepted ---------------------------------------------

func parseFaultType(types []string) func(string) (any, error) {
	return func(raw string) (any, error) {
		v := strings.ToLower(raw)
		for _, t := range types {
			if v == t {
				return v, nil
			}
		}
		return nil, errors.New("expected one of " + strings.Join(types, ", "))
	}
}

// wholeNumber parses an integer as Python's int() does; one too large for int64 is clamped,
// which only matters for delays (capped again when slept).
func wholeNumber(raw string, low, high int64, expected, outOfRange string) (any, error) {
	v, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, 64)
	if err != nil && errors.Is(err, strconv.ErrRange) {
		err = nil
	}
	if err != nil || strings.HasPrefix(raw, "_") || strings.HasSuffix(raw, "_") {
		return nil, errors.New(expected)
	}
	if v < low || v > high {
		return nil, errors.New(outOfRange)
	}
	return v, nil
}

func parseNonNegative(raw string) (any, error) {
	return wholeNumber(raw, 0, math.MaxInt64, "expected a whole number of milliseconds, e.g. 2000",
		"expected a number ≥ 0")
}

func parseStatusCode(raw string) (any, error) {
	return wholeNumber(raw, 100, 599, "expected an HTTP status code, e.g. 503",
		"expected an HTTP status code from 100 to 599")
}

func parsePort(raw string) (any, error) {
	return wholeNumber(raw, 0, 65535, "expected a TCP port number",
		"expected a TCP port from 0 (any free port) to 65535")
}

func parsePercentage(raw string) (any, error) {
	lower := strings.ToLower(raw)
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || strings.HasPrefix(lower, "0x") || strings.HasPrefix(lower, "-0x") ||
		strings.HasPrefix(lower, "+0x") {
		return nil, errors.New("expected a number from 0 to 100, e.g. 12.5")
	}
	if math.IsNaN(v) || v < 0 || v > 100 {
		return nil, errors.New("expected a number from 0 to 100")
	}
	return v, nil
}

func parseHostPort(raw string) (any, error) {
	i := strings.LastIndex(raw, ":")
	bad := errors.New("expected host:port, e.g. 127.0.0.1:9100")
	if i <= 0 || i == len(raw)-1 {
		return nil, bad
	}
	port := raw[i+1:]
	for _, ch := range port {
		if ch < '0' || ch > '9' {
			return nil, bad
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, bad
	}
	return raw, nil
}

// ParseBool accepts true/false in any case, and 1/0, yes/no, as SSM and the CLI may send them.
func ParseBool(raw string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errors.New("expected true or false")
}

// utcLayouts are the ISO-8601 forms Python's datetime.fromisoformat reads (Z and offsets
// included); a time without an offset is UTC.
var utcLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02T15Z07:00", "2006-01-02T15",
	"2006-01-02",
}

// ParseUTC reads an ISO-8601 time, e.g. 2026-01-31T12:00:00Z.
func ParseUTC(raw string) (time.Time, error) {
	text := strings.TrimSpace(raw)
	if strings.HasSuffix(text, "z") {
		text = text[:len(text)-1] + "Z"
	}
	for _, layout := range utcLayouts {
		if t, err := time.Parse(layout, text); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("expected an ISO-8601 UTC time, e.g. 2026-01-31T12:00:00Z")
}
