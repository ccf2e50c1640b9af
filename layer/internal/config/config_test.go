package config

import (
	"strings"
	"testing"
	"time"

	"lambdachaos"
)

func load(t *testing.T) *lambdachaos.Settings {
	t.Helper()
	s, err := lambdachaos.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// env builds a Getenv from constant keys, as settings.json names them.
func env(s *lambdachaos.Settings, values map[string]string) Getenv {
	named := map[string]string{}
	for k, v := range values {
		if strings.HasPrefix(k, "AWS_") {
			named[k] = v
		} else {
			named[s.Name(k)] = v
		}
	}
	return func(name string) (string, bool) { v, ok := named[name]; return v, ok }
}

func TestEveryKeyThisPackageReadsExistsWithTheKindItParses(t *testing.T) {
	s := load(t)
	for key, kind := range Kinds {
		setting, ok := s.Lookup(key)
		if !ok {
			t.Errorf("settings.json has no setting %q", key)
		} else if setting.Kind != kind {
			t.Errorf("%s is of kind %q in settings.json; the Go code parses it as %q", key, setting.Kind, kind)
		}
	}
	if s.RuntimeAPIVariable() != "AWS_LAMBDA_RUNTIME_API" {
		t.Errorf("runtime API variable %q", s.RuntimeAPIVariable())
	}
}

func TestDefaultsAreThoseOfSettingsJSON(t *testing.T) {
	s := load(t)
	c := FromEnviron(s, env(s, nil))
	if c.FaultType != "" || c.Percentage != 100 || c.ProxyPort != 9140 || c.ResponseStatusCode != 500 ||
		c.ErrorType != "ChaosInjectedError" || c.ErrorMessage != "Error injected by the chaos layer" ||
		c.MetricsNamespace != "LambdaChaos" || c.PreventExecution || !c.ExpiresAt.IsZero() || len(c.Problems) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValidValuesAreParsed(t *testing.T) {
	s := load(t)
	c := FromEnviron(s, env(s, map[string]string{
		"FAULT_TYPE": " Latency ", "LATENCY_MS": "2000", "LATENCY_JITTER_MS": "1_000",
		"INVOCATION_PERCENTAGE": "12.5", "PREVENT_EXECUTION": "YES", "RESPONSE_STATUS_CODE": "503",
		"EXPIRES_AT": "2026-01-31T12:00:00+01:00", "PROXY_PORT": "0", "DECISION_SEED": " s ",
		"UPSTREAM_RUNTIME_API": "127.0.0.1:9100", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1",
		"ERROR_TYPE": "", "RESPONSE_BODY": " kept ",
	}))
	want := time.Date(2026, 1, 31, 11, 0, 0, 0, time.UTC)
	if c.FaultType != "latency" || c.LatencyMs != 2000 || c.LatencyJitterMs != 1000 || c.Percentage != 12.5 ||
		!c.PreventExecution || c.ResponseStatusCode != 503 || !c.ExpiresAt.Equal(want) || c.ProxyPort != 0 ||
		c.DecisionSeed != "s" || c.Upstream != "127.0.0.1:9100" || c.ErrorType != "ChaosInjectedError" ||
		c.ResponseBody != " kept " || len(c.Problems) != 0 {
		t.Errorf("parsed: %+v", c)
	}
}

func TestUpstreamDefaultsToTheRuntimeAPI(t *testing.T) {
	s := load(t)
	if c := FromEnviron(s, env(s, map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})); c.Upstream != "127.0.0.1:1" {
		t.Errorf("upstream %q", c.Upstream)
	}
}

func TestEveryBadValueDisablesTheFaultWithOneProblemNamingVariableAndValue(t *testing.T) {
	s := load(t)
	cases := []struct{ key, value, says string }{
		{"FAULT_TYPE", "slow", "expected one of latency, error, response"},
		{"LATENCY_MS", "fast", "expected a whole number of milliseconds"},
		{"LATENCY_MS", "-1", "expected a number ≥ 0"},
		{"LATENCY_JITTER_MS", "1.5", "expected a whole number"},
		{"INVOCATION_PERCENTAGE", "150", "expected a number from 0 to 100"},
		{"INVOCATION_PERCENTAGE", "nan", "expected a number from 0 to 100"},
		{"INVOCATION_PERCENTAGE", "half", "e.g. 12.5"},
		{"PREVENT_EXECUTION", "maybe", "expected true or false"},
		{"RESPONSE_STATUS_CODE", "42", "from 100 to 599"},
		{"EXPIRES_AT", "tomorrow", "ISO-8601"},
		{"PROXY_PORT", "70000", "from 0 (any free port) to 65535"},
		{"UPSTREAM_RUNTIME_API", "nowhere", "expected host:port"},
		{"UPSTREAM_RUNTIME_API", "host:0", "expected host:port"},
	}
	for _, c := range cases {
		got := FromEnviron(s, env(s, map[string]string{"FAULT_TYPE": "error", c.key: c.value}))
		if got.FaultType != "" || len(got.Problems) != 1 {
			t.Errorf("%s=%s: fault %q, problems %q", c.key, c.value, got.FaultType, got.Problems)
			continue
		}
		want := s.Name(c.key) + "='" + c.value + "' is invalid: "
		if p := got.Problems[0]; !strings.HasPrefix(p, want) || !strings.Contains(p, c.says) ||
			!strings.HasSuffix(p, "; no fault is injected") {
			t.Errorf("problem %q", p)
		}
	}
}

func TestBlankValuesMeanTheDefault(t *testing.T) {
	s := load(t)
	c := FromEnviron(s, env(s, map[string]string{"FAULT_TYPE": "error", "LATENCY_MS": "  ", "PROXY_PORT": ""}))
	if c.FaultType != "error" || c.ProxyPort != 9140 || len(c.Problems) != 0 {
		t.Errorf("%+v", c)
	}
}

func TestActiveUntilItsExpiry(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Config{FaultType: "error", ExpiresAt: at}
	if !c.Active(at.Add(-time.Nanosecond)) || c.Active(at) || (Config{}).Active(at) {
		t.Error("Active")
	}
	if FormatUTC(at) != "2030-01-01T00:00:00Z" {
		t.Error(FormatUTC(at))
	}
}
