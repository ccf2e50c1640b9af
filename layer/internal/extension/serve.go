package extension

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"lambdachaos/internal/config"
)

// ServeProxy is the proxy alone, for black-box tests: it reads the same environment, listens
// on 127.0.0.1:CHAOS_PROXY_PORT (0: any free port), forwards to CHAOS_UPSTREAM_RUNTIME_API
// (else AWS_LAMBDA_RUNTIME_API), prints "listening 127.0.0.1:<port>" on ready once it
// accepts, and serves until SIGTERM or SIGINT. Unlike Run it starts the proxy whatever the
// fault, so that pass-through, expiry and a dead upstream can all be tested.
func ServeProxy(e Env, ready io.Writer) int {
	cfg := config.FromEnviron(e.Settings, e.Getenv)
	for _, problem := range cfg.Problems {
		e.Log.Log(problem)
	}
	p := newProxy(e, &cfg)
	port, err := p.Listen(cfg.ProxyPort)
	if err != nil {
		e.Log.Log(fmt.Sprintf("cannot listen on 127.0.0.1:%d (%v). Set %s to a free port.",
			cfg.ProxyPort, err, e.Settings.Name("PROXY_PORT")))
		return 1
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go p.Serve()
	fmt.Fprintf(ready, "listening 127.0.0.1:%d\n", port)
	<-signals
	p.Close()
	return 0
}
