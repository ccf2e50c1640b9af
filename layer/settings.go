// Package lambdachaos holds the layer's settings: every environment variable's name, kind and
// default, the fault types, the layer's paths and the runtimes it serves. They are defined
// once, in settings.json, which the Python automation and the README table also read; the Go
// code embeds that file and refers to a variable only by its "constant" key (FAULT_TYPE),
// never by retyping its name, so the two languages cannot drift apart.
package lambdachaos

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed settings.json
var settingsJSON []byte

// Setting is one environment variable of the layer.
type Setting struct {
	Constant string          `json:"constant"`
	Name     string          `json:"name"`
	Kind     string          `json:"kind"`
	Default  json.RawMessage `json:"default"`
}

// Settings is the parsed settings.json.
type Settings struct {
	Variables       []Setting         `json:"settings"`
	FaultTypes      []string          `json:"fault_types"`
	LambdaVariables map[string]string `json:"lambda_variables"`
	Layer           struct {
		ExtensionName    string `json:"extension_name"`
		DefaultProxyPort int    `json:"default_proxy_port"`
		ReadyFilePattern string `json:"ready_file_pattern"`
	} `json:"layer"`
}

// Load parses the embedded settings.json. It fails only if the file itself is broken, which
// the Go tests catch at build time.
func Load() (*Settings, error) {
	var s Settings
	if err := json.Unmarshal(settingsJSON, &s); err != nil {
		return nil, fmt.Errorf("layer/settings.json is not valid JSON: %w", err)
	}
	return &s, nil
}

// Lookup returns the setting whose constant key is constant, e.g. "FAULT_TYPE".
func (s *Settings) Lookup(constant string) (Setting, bool) {
	for _, v := range s.Variables {
		if v.Constant == constant {
			return v, true
		}
	}
	return Setting{}, false
}

// Name is the environment variable named by constant (FAULT_TYPE gives CHAOS_FAULT_TYPE); an
// unknown key gives a name no environment holds, so a typo means "unset", never a crash (the
// tests check that every key the Go code uses exists).
func (s *Settings) Name(constant string) string {
	if v, ok := s.Lookup(constant); ok {
		return v.Name
	}
	return "UNDEFINED_SETTING_" + constant
}

// DefaultText is the default of constant as text (a JSON string unquoted, a number as
// written); "" when the default is null.
func (s *Settings) DefaultText(constant string) string {
	v, _ := s.Lookup(constant)
	var text string
	if json.Unmarshal(v.Default, &text) == nil {
		return text
	}
	if raw := strings.TrimSpace(string(v.Default)); raw != "null" {
		return raw
	}
	return ""
}

// RuntimeAPIVariable is the variable Lambda sets to the Runtime API's host:port.
func (s *Settings) RuntimeAPIVariable() string { return s.LambdaVariables["runtime_api"] }

// ReadyFile is the file the extension writes once its proxy listens, keyed by the Runtime
// API address so that concurrent local environments never share one.
func (s *Settings) ReadyFile(runtimeAPI string) string {
	return strings.ReplaceAll(s.Layer.ReadyFilePattern, "{runtime_api}", runtimeAPI)
}
