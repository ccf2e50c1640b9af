package extension

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"lambdachaos"
	"lambdachaos/internal/config"
	"lambdachaos/internal/metrics"
	"lambdachaos/internal/proxy"
	"lambdachaos/internal/wire"
)

// Env is what the extension reads from its process: the environment and where to log.
type Env struct {
	Settings *lambdachaos.Settings
	Getenv   config.Getenv
	Log      metrics.Logger
}

// Run is the external extension, until SHUTDOWN; it returns the exit status.
//
//  1. Read the configuration once; each bad value is one log line and means no fault.
//  2. If a fault is configured and not expired, start the proxy on 127.0.0.1. If the port
//     cannot be bound or the upstream does not answer, say so and carry on without it: the
//     function must still start.
//  3. Write the ready file ("<port> <pid>") that tells the wrapper the proxy is up, before
//     registering, because Lambda starts the runtime only once every extension registered.
//  4. Register for SHUTDOWN only.
//  5. Block on /event/next until SHUTDOWN (or SIGTERM), remove the ready file, exit 0.
func Run(e Env) int {
	runtimeAPI, _ := e.Getenv(e.Settings.RuntimeAPIVariable())
	if runtimeAPI == "" {
		e.Log.Log(e.Settings.RuntimeAPIVariable() + " is not set: this extension runs only " +
			"inside Lambda (or the local emulator)")
		return 1
	}
	ready := e.Settings.ReadyFile(runtimeAPI)
	_ = os.Remove(ready) // a file left by an earlier environment must not point at a dead proxy
	defer os.Remove(ready)
	removeOnSignal(ready)
	cfg := config.FromEnviron(e.Settings, e.Getenv)
	for _, problem := range cfg.Problems {
		e.Log.Log(problem)
	}
	if p := startProxy(e, &cfg); p != nil {
		writeReady(e.Log, ready, p.port)
	}
	id, err := register(runtimeAPI, e.Settings.Layer.ExtensionName)
	if err == nil {
		err = waitForShutdown(runtimeAPI, id)
	}
	if err != nil {
		e.Log.Log(err.Error())
		return 1
	}
	return 0
}

type started struct{ port int }

// startProxy starts the proxy for an active fault, or returns nil (logged) when it must not.
func startProxy(e Env, cfg *config.Config) *started {
	if cfg.FaultType == "" {
		return nil
	}
	if !cfg.Active(time.Now()) {
		e.Log.Log(fmt.Sprintf("fault %s expired at %s; passing everything through",
			cfg.FaultType, config.FormatUTC(cfg.ExpiresAt)))
		return nil
	}
	// An upstream that does not answer would turn every call into a 502: bypass instead.
	probe, err := wire.Connect(cfg.Upstream, time.Second)
	if err != nil {
		e.Log.Log(fmt.Sprintf("the Runtime API at %s does not answer (%v); no fault is injected. "+
			"Check %s.", cfg.Upstream, err, e.Settings.Name("UPSTREAM_RUNTIME_API")))
		return nil
	}
	_ = probe.Close()
	p := newProxy(e, cfg)
	port, err := p.Listen(cfg.ProxyPort)
	if err != nil {
		e.Log.Log(fmt.Sprintf("cannot listen on 127.0.0.1:%d (%v); no fault is injected. "+
			"Set %s to a free port.", cfg.ProxyPort, err, e.Settings.Name("PROXY_PORT")))
		return nil
	}
	go p.Serve()
	e.Log.Log(fmt.Sprintf("proxy on 127.0.0.1:%d -> %s: %s at %s%% of invocations",
		port, cfg.Upstream, cfg.FaultType, strconv.FormatFloat(cfg.Percentage, 'g', -1, 64)))
	return &started{port: port}
}

func newProxy(e Env, cfg *config.Config) *proxy.Proxy {
	p := proxy.New(cfg, cfg.Upstream, e.Log)
	p.FunctionName, _ = e.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	p.TaskRoot, _ = e.Getenv("LAMBDA_TASK_ROOT")
	return p
}

// writeReady writes "<port> <pid>" atomically (a rename): the wrapper never reads half a file.
func writeReady(log metrics.Logger, path string, port int) {
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", port, os.Getpid())), 0o644)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		log.Log(fmt.Sprintf("cannot write %s (%v); the runtime will bypass the proxy", path, err))
	}
}

// removeOnSignal removes the ready file if the extension is stopped by a signal rather than
// SHUTDOWN (the local emulator, a developer's Ctrl-C), so no file names a dead proxy.
func removeOnSignal(ready string) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		_ = os.Remove(ready)
		os.Exit(0)
	}()
}
