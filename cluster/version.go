package cluster

import "runtime"

func goVersion() string { return runtime.Version() }
