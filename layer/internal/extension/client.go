// Package extension is the layer's lifecycle: the Extensions API client (register, event
// loop), the ready-file handshake with the wrapper, and the two ways the binary runs (as
// Lambda's external extension, and proxy-only for black-box tests).
package extension

import (
	"encoding/json"
	"fmt"
	"time"

	"lambdachaos/internal/wire"
)

const apiPrefix = "/2020-01-01/extension"

// register subscribes to SHUTDOWN only: with no INVOKE events the extension costs nothing
// per invocation. It returns the extension id.
func register(runtimeAPI, name string) (string, error) {
	status, head, body, err := wire.Request(runtimeAPI, "POST", apiPrefix+"/register",
		[]byte(`{"events": ["SHUTDOWN"]}`), []wire.HeaderField{
			{Name: "Lambda-Extension-Name", Value: name},
			{Name: "Content-Type", Value: "application/json"}}, 10*time.Second)
	if err != nil {
		return "", fmt.Errorf("cannot register with the Extensions API at %s: %w", runtimeAPI, err)
	}
	id := wire.Header(head, lowered(head), "lambda-extension-identifier")
	if status != 200 || len(id) == 0 {
		return "", fmt.Errorf("the Extensions API register answered %d: %q", status, clip(body))
	}
	return string(id), nil
}

// waitForShutdown long-polls /event/next until SHUTDOWN (no deadline: the poll lasts as long
// as the execution environment).
func waitForShutdown(runtimeAPI, id string) error {
	for {
		status, _, body, err := wire.Request(runtimeAPI, "GET", apiPrefix+"/event/next", nil,
			[]wire.HeaderField{{Name: "Lambda-Extension-Identifier", Value: id}}, 0)
		if err != nil {
			return fmt.Errorf("the Extensions API event/next failed: %w", err)
		}
		if status != 200 {
			return fmt.Errorf("the Extensions API event/next answered %d: %q", status, clip(body))
		}
		var event struct {
			EventType string `json:"eventType"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &event); err != nil {
				return fmt.Errorf("the Extensions API sent an event that is not JSON: %w", err)
			}
		}
		if event.EventType == "SHUTDOWN" {
			return nil
		}
	}
}

func lowered(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func clip(b []byte) []byte { return b[:min(len(b), 200)] }
