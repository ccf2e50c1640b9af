package lambdachaos

import "testing"

func TestTheEmbeddedSettingsHoldWhatTheGoCodeReads(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Layer.ExtensionName != "lambda-chaos-extension" || s.Layer.DefaultProxyPort != 9140 {
		t.Errorf("layer: %+v", s.Layer)
	}
	if got := s.ReadyFile("127.0.0.1:9001"); got != "/tmp/lambda-chaos.127.0.0.1:9001.ready" {
		t.Errorf("ready file %q", got)
	}
	if len(s.FaultTypes) != 3 {
		t.Errorf("fault types %v", s.FaultTypes)
	}
	if v, _ := s.Lookup("PROXY_PORT"); s.DefaultText("PROXY_PORT") != "9140" || v.Name != "CHAOS_PROXY_PORT" {
		t.Errorf("PROXY_PORT: %+v", v)
	}
	if s.Name("NO_SUCH_KEY") == "" {
		t.Error("an unknown key must still give a name no environment holds")
	}
}
