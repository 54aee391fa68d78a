package runtime

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// CleanupNode stops and removes every container and pod sandbox labelled
// labels.ManagedBy=nodeName, without grace (containers are killed). It
// goes on after a failure and returns all errors joined.
func CleanupNode(ctx context.Context, rt runtimeapi.RuntimeServiceClient, nodeName string) error {
	sel := map[string]string{labels.ManagedBy: nodeName}
	var errs []error
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return fmt.Errorf("runtime: list containers of node %s: %w", nodeName, err)
	}
	for _, c := range cs.Containers {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING || c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
			if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 0}); ignoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("stop container %s: %w", c.Id, err))
				continue
			}
		}
		if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); ignoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.Id, err))
		}
	}
	ss, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("runtime: list sandboxes of node %s: %w", nodeName, err))...)
	}
	for _, s := range ss.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); ignoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", s.Id, err))
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); ignoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", s.Id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("runtime: clean up node %s: %w", nodeName, err)
	}
	return nil
}

func ignoreNotFound(err error) error {
	if status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}
