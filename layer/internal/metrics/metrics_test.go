package metrics

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRecordIsValidEMFWithCountsAndMilliseconds(t *testing.T) {
	line := Record(Fault{RequestID: "req-1", Fault: "latency", InjectedMs: 1500, Namespace: "MyChaos",
		FunctionName: "checkout", ExperimentID: "exp-9", TimestampMs: 1_700_000_000_000})
	var record map[string]any
	if err := json.Unmarshal([]byte(line), &record); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	directive := record["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if directive["Namespace"] != "MyChaos" {
		t.Errorf("namespace %v", directive["Namespace"])
	}
	for _, d := range directive["Dimensions"].([]any)[0].([]any) {
		if _, ok := record[d.(string)]; !ok {
			t.Errorf("dimension %v is not a top-level member", d)
		}
	}
	for _, m := range directive["Metrics"].([]any) {
		if _, ok := record[m.(map[string]any)["Name"].(string)].(float64); !ok {
			t.Errorf("metric %v is not a number", m)
		}
	}
	if record["InjectedFaults"] != 1.0 || record["InjectedMilliseconds"] != 1500.0 ||
		record["requestId"] != "req-1" || record["experimentId"] != "exp-9" ||
		record["FaultType"] != "latency" || record["preventExecution"] != false {
		t.Errorf("fields: %s", line)
	}
}

// The Python layer's exact bytes for the same record (json.dumps, separators (",", ":")).
func TestRecordBytesAreThePythonLayers(t *testing.T) {
	got := Record(Fault{RequestID: "r", Fault: "error", Namespace: "N", FunctionName: "f✓",
		PreventExecution: true, TimestampMs: 5})
	want := `{"_aws":{"Timestamp":5,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["FunctionName","FaultType"]],"Metrics":[{"Name":"InjectedFaults","Unit":"Count"},{"Name":"InjectedMilliseconds","Unit":"Milliseconds"}]}]},"message":"chaos fault injected","FunctionName":"f\u2713","FaultType":"error","InjectedFaults":1,"InjectedMilliseconds":0,"requestId":"r","experimentId":"","preventExecution":true}`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEmitAndLogWriteExactlyOneLineEach(t *testing.T) {
	var out bytes.Buffer
	l := Logger{W: &out}
	l.Emit(Fault{RequestID: "r", Fault: "error"})
	l.Log("a problem")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "[lambda-chaos] a problem") {
		t.Errorf("lines: %q", lines)
	}
}
