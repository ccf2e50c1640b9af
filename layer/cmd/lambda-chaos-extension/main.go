// Command lambda-chaos-extension is the chaos layer's external extension and Runtime API
// proxy in one static binary. main only wires: settings, environment and log into the
// lifecycle (internal/extension), which numbers its steps.
//
// Usage: lambda-chaos-extension                 run as Lambda's external extension
//
//	lambda-chaos-extension --serve-proxy   run the proxy alone (black-box tests)
package main

import (
	"fmt"
	"os"
	"runtime"

	"lambdachaos"
	"lambdachaos/internal/extension"
	"lambdachaos/internal/metrics"
)

func main() {
	// One P: the proxy is I/O-bound and shares the function's vCPUs, and with more Ps the idle
	// ones spin and wake each other on every network event. Measured in the emulator (1 KB,
	// interleaved, both runtime clients): 0.01-0.05 ms less per invocation and ~8 % fewer
	// syscalls, no change at 1 MB. A GOMAXPROCS in the environment is kept.
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
	}
	s, err := lambdachaos.Load()
	if err != nil {
		fmt.Fprintln(os.Stdout, metrics.LogPrefix, err)
		os.Exit(1)
	}
	env := extension.Env{Settings: s, Getenv: os.LookupEnv, Log: metrics.Logger{W: os.Stdout}}
	switch {
	case len(os.Args) == 1:
		os.Exit(extension.Run(env))
	case len(os.Args) == 2 && os.Args[1] == "--serve-proxy":
		os.Exit(extension.ServeProxy(env, os.Stdout))
	default:
		env.Log.Log(fmt.Sprintf("unknown arguments %q: run with none (as Lambda does) or "+
			"with --serve-proxy", os.Args[1:]))
		os.Exit(2)
	}
}
