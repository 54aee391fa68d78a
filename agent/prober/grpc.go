package prober

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
)

// probeGRPC calls grpc.health.v1.Health/Check on the pod IP and port
// (plaintext) with the action's service name; SERVING passes.
func probeGRPC(ctx context.Context, a *v1.GRPCAction, t Target, timeout time.Duration) outcome {
	if a.Port < 1 || a.Port > 65535 {
		return erroredf("invalid port number: %d", a.Port)
	}
	if t.PodIP == "" {
		return erroredf("pod %s has no IP address", podRef(t.Pod))
	}
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(a.Port)))
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/"+KubeletVersion))
	if err != nil {
		return errored(fmt.Errorf("grpc client for %s: %w", addr, err))
	}
	defer func() { _ = conn.Close() }()

	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if ctx.Err() != nil {
			return errored(fmt.Errorf("grpc probe abandoned: %w", ctx.Err()))
		}
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return failed(fmt.Sprintf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message()))
		case codes.DeadlineExceeded:
			return failed(fmt.Sprintf("timeout: health rpc did not complete within %v", timeout))
		case codes.Unavailable:
			return failed(fmt.Sprintf("failed to connect service %q: %s", addr, st.Message()))
		}
		return failed(fmt.Sprintf("error: health rpc probe failed: %v", err))
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return failed(fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()))
	}
	return succeeded()
}
