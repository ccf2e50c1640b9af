package faults

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"lambdachaos/internal/config"
)

var now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func draws(values ...float64) Draw {
	return func() float64 {
		v := values[0]
		values = values[1:]
		return v
	}
}

func noDraw(t *testing.T) Draw {
	return func() float64 { t.Fatal("drew a random number"); return 0 }
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		cfg  config.Config
		now  time.Time
		draw []float64
		want *Decision
	}{
		{"no fault decides nothing", config.Config{Percentage: 100}, now, nil, nil},
		{"latency jitter lower bound", config.Config{FaultType: "latency", LatencyMs: 100, LatencyJitterMs: 10, Percentage: 100},
			now, []float64{0.0}, &Decision{Fault: "latency", DelayMs: 100}},
		{"latency jitter includes its bound", config.Config{FaultType: "latency", LatencyMs: 100, LatencyJitterMs: 10, Percentage: 100},
			now, []float64{0.999999}, &Decision{Fault: "latency", DelayMs: 110}},
		{"percentage draw, then jitter draw", config.Config{FaultType: "latency", LatencyMs: 300, LatencyJitterMs: 100, Percentage: 50},
			now, []float64{0.2, 0.5}, &Decision{Fault: "latency", DelayMs: 350}},
		{"draw at the percentage passes through", config.Config{FaultType: "error", Percentage: 12.5},
			now, []float64{0.125}, nil},
		{"draw below the percentage injects", config.Config{FaultType: "error", Percentage: 12.5},
			now, []float64{0.1249}, &Decision{Fault: "error"}},
		{"expired at its instant", config.Config{FaultType: "error", Percentage: 100, ExpiresAt: now},
			now, nil, nil},
		{"before expiry injects", config.Config{FaultType: "error", Percentage: 100, ExpiresAt: now},
			now.Add(-time.Second), nil, &Decision{Fault: "error"}},
		{"prevent execution carried for error", config.Config{FaultType: "error", Percentage: 100, PreventExecution: true},
			now, nil, &Decision{Fault: "error", PreventExecution: true}},
		{"prevent execution carried for response", config.Config{FaultType: "response", Percentage: 100, PreventExecution: true},
			now, nil, &Decision{Fault: "response", PreventExecution: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			draw := noDraw(t)
			if c.draw != nil {
				draw = draws(c.draw...)
			}
			if got := Decide(&c.cfg, c.now, draw); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestPercentageOverManyInvocationsIsWithinFourSigma(t *testing.T) {
	cfg := config.Config{FaultType: "error", Percentage: 12.5}
	rng := rand.New(rand.NewPCG(7, 7))
	n, hits := 20000, 0
	for range n {
		if Decide(&cfg, now, rng.Float64) != nil {
			hits++
		}
	}
	sigma := 46.77 // sqrt(20000 * 0.125 * 0.875)
	if d := float64(hits) - 2500; d > 4*sigma || d < -4*sigma {
		t.Errorf("%d hits of %d at 12.5%%", hits, n)
	}
}

// Vectors from CPython: [random.Random(f"{seed}/{rid}").random() for _ in range(3)].
func TestSeededDrawsAreCPythonsRandom(t *testing.T) {
	cases := []struct {
		seed, rid string
		want      [3]float64
	}{
		{"s", "req-1", [3]float64{0.44418368565415944, 0.37502808599291915, 0.5970884230886407}},
		{"run-42", "req-0", [3]float64{0.23660226776963167, 0.8101036636650185, 0.6837857893587582}},
		{"run-42", "req-39", [3]float64{0.340849917872171, 0.7681495820033085, 0.6790864895835161}},
		{"t", "req-1", [3]float64{0.8808803538785062, 0.6729267191276452, 0.9249906956063976}},
		{"", "x", [3]float64{0.46934801401147497, 0.5011995438745807, 0.43890414530950883}},
		{"zoë", "\xe9\xff", [3]float64{0.598492181745896, 0.8671924786732291, 0.3228037466345003}},
	}
	for _, c := range cases {
		draw := SeededDraw(c.seed, []byte(c.rid))
		got := [3]float64{draw(), draw(), draw()}
		if got != c.want {
			t.Errorf("SeededDraw(%q, %q) = %v, want %v", c.seed, c.rid, got, c.want)
		}
	}
}

func TestInjectedErrorIsAwslambdaricsPayloadAndHeaders(t *testing.T) {
	cfg := config.Config{ErrorType: "Throttled", ErrorMessage: "slow down ✋"}
	body, headers := ErrorResult(&cfg, "r1", "/var/task")
	want := `{"errorMessage": "slow down \u270b", "errorType": "Throttled", "requestId": "r1", "stackTrace": []}`
	if string(body) != want {
		t.Errorf("body %s, want %s", body, want)
	}
	h := map[string]string{}
	for _, x := range headers {
		h[x.Name] = x.Value
	}
	if h[ErrorTypeHeader] != "Throttled" || h["Content-Type"] != "application/json" {
		t.Errorf("headers %v", headers)
	}
	wantCause := `{"working_directory": "/var/task", "exceptions": [{"message": "slow down \u270b", "type": "Throttled", "stack": []}], "paths": []}`
	if h[XRayCauseHeader] != wantCause {
		t.Errorf("cause %s, want %s", h[XRayCauseHeader], wantCause)
	}
}

func TestHeadersOfAnInjectedErrorCannotBeSplit(t *testing.T) {
	cfg := config.Config{ErrorType: "A\r\nX-Evil: 1", ErrorMessage: "line\r\nX-Evil: 1 ✋"}
	_, headers := ErrorResult(&cfg, "", "")
	for _, h := range headers {
		if strings.ContainsAny(h.Value, "\r\n") || strings.IndexFunc(h.Value, func(r rune) bool { return r > 126 }) >= 0 {
			t.Errorf("%s: %q", h.Name, h.Value)
		}
	}
	cfg.ErrorType = "✋"
	if _, headers := ErrorResult(&cfg, "", ""); headers[1].Value != "ChaosInjectedError" {
		t.Errorf("an error type with nothing printable: %q", headers[1].Value)
	}
}

func TestReplacementIsAnAPIGatewayProxyResponse(t *testing.T) {
	cases := []struct{ body, contentType string }{
		{`{"ok": false}`, "application/json"}, {"Service down", "text/plain"}, {"", "text/plain"},
		{strings.Repeat("[", 3000), "text/plain"}, {"NaN", "application/json"},
	}
	for _, c := range cases {
		cfg := config.Config{ResponseStatusCode: 503, ResponseBody: c.body}
		payload, _ := ReplacementResult(&cfg)
		var got map[string]any
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		want := map[string]any{"statusCode": 503.0, "headers": map[string]any{"Content-Type": c.contentType},
			"body": c.body, "isBase64Encoded": false}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}
