package prober

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
)

// grpcServer starts a loopback gRPC server (with the health service when
// withHealth) and returns its port.
func grpcServer(t *testing.T, withHealth bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if withHealth {
		hs := health.NewServer()
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus("cache", healthpb.HealthCheckResponse_NOT_SERVING)
		healthpb.RegisterHealthServer(srv, hs)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

func grpcProbe(port int, service *string) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: int32(port), Service: service}}}
}

func TestRunGRPC(t *testing.T) {
	healthy := grpcServer(t, true)
	bare := grpcServer(t, false)
	closed := closedTCPPort(t)
	svc := func(s string) *string { return &s }
	tests := []struct {
		name       string
		probe      *v1.Probe
		podIP      string
		want       Result
		wantMsg    string
		wantPrefix bool
	}{
		{"server status", grpcProbe(healthy, nil), "127.0.0.1", Success, "", false},
		{"serving service", grpcProbe(healthy, svc("db")), "127.0.0.1", Success, "", false},
		{"not serving service", grpcProbe(healthy, svc("cache")), "127.0.0.1", Failure,
			`Liveness probe failed: service unhealthy (responded with "NOT_SERVING")`, false},
		{"unknown service", grpcProbe(healthy, svc("nope")), "127.0.0.1", Failure,
			"Liveness probe failed: error: health rpc probe failed: rpc error: code = NotFound", true},
		{"no health service", grpcProbe(bare, nil), "127.0.0.1", Failure,
			"Liveness probe failed: this server does not implement the grpc health protocol (grpc.health.v1.Health): ", true},
		{"closed port", grpcProbe(closed, nil), "127.0.0.1", Failure,
			fmt.Sprintf(`Liveness probe failed: failed to connect service "127.0.0.1:%d": `, closed), true},
		{"no pod IP", grpcProbe(healthy, nil), "", Unknown, "Liveness probe errored: pod  has no IP address", false},
		{"bad port", grpcProbe(0, nil), "127.0.0.1", Unknown, "Liveness probe errored: invalid port number: 0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := Run(context.Background(), Liveness, tt.probe, Target{PodIP: tt.podIP})
			match := msg == tt.wantMsg
			if tt.wantPrefix {
				match = strings.HasPrefix(msg, tt.wantMsg)
			}
			if got != tt.want || !match {
				t.Fatalf("Run = %v, %q; want %v, %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
}
