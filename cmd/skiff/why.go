package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/why"
)

// maxExplained bounds how many pods of a workload `skiff why` explains.
const maxExplained = 5

// whyCommand answers "why is my pod not running?" for a pod or for the
// pods of a workload, and "why does my Service not answer?" for a Service.
func whyCommand() *cobra.Command {
	var namespace, kubeconfig string
	c := &cobra.Command{
		Use:   "why [TYPE/]NAME",
		Short: "Explain why a pod (or a workload's pods) is not running, or why a Service does not answer",
		Long: "Explain why a pod is not running or not ready: scheduling (with the reasons per node),\n" +
			"node health, containers waiting or crashing, readiness, deletion, and recent warnings.\n" +
			"TYPE is pod (the default), deployment, replicaset, statefulset, daemonset or job.\n\n" +
			"For service/NAME (or svc/NAME) it explains why a Service does not answer: ExternalName\n" +
			"and headless Services, its ready endpoints, a selector that matches no pod, pods that\n" +
			"are not ready, named target ports the pods lack, LoadBalancer addresses, node ports,\n" +
			"Local traffic policies and the NetworkPolicies in front of its pods.",
		Example: "  skiff why web-7bfb4bc78d-747lr\n  skiff why deployment/web -n shop\n  skiff why svc/web -n shop",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, ns, err := whyClient(kubeconfig, namespace)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if kind, name, ok := strings.Cut(args[0], "/"); ok && isServiceKind(kind) {
				r, err := explainService(ctx, client, ns, name)
				if err != nil {
					return err
				}
				fmt.Print(why.Format(r))
				return nil
			}
			pods, err := podsOf(ctx, client, ns, args[0])
			if err != nil {
				return err
			}
			shown := 0
			for i := range pods {
				r := explainPod(ctx, client, &pods[i])
				if r.OK && len(pods) > 1 {
					continue
				}
				fmt.Print(why.Format(r))
				if shown++; shown == maxExplained {
					fmt.Printf("(%d more pods not shown)\n", len(pods)-i-1)
					break
				}
			}
			if shown == 0 {
				fmt.Printf("%s: all %d pods are running and ready (or finished well)\n", args[0], len(pods))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace (default: the kubeconfig's, else default)")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default $KUBECONFIG, else "+defaultDataDir+"/admin.kubeconfig)")
	return c
}

func whyClient(kubeconfig, namespace string) (kubernetes.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	} else if os.Getenv("KUBECONFIG") == "" {
		rules.ExplicitPath = filepath.Join(defaultDataDir, "admin.kubeconfig")
	}
	overrides := &clientcmd.ConfigOverrides{}
	overrides.Context.Namespace = namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns := namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = metav1.NamespaceDefault
		}
	}
	client, err := kubernetes.NewForConfig(cfg)
	return client, ns, err
}

// podsOf resolves TYPE/NAME to the pods it means.
func podsOf(ctx context.Context, client kubernetes.Interface, ns, ref string) ([]corev1.Pod, error) {
	kind, name, found := strings.Cut(ref, "/")
	if !found {
		kind, name = "pod", ref
	}
	var selector *metav1.LabelSelector
	switch strings.ToLower(kind) {
	case "pod", "pods", "po":
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return []corev1.Pod{*p}, nil
	case "deployment", "deployments", "deploy":
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		selector = d.Spec.Selector
	case "replicaset", "replicasets", "rs":
		rs, err := client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		selector = rs.Spec.Selector
	case "statefulset", "statefulsets", "sts":
		s, err := client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		selector = s.Spec.Selector
	case "daemonset", "daemonsets", "ds":
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		selector = d.Spec.Selector
	case "job", "jobs":
		j, err := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		selector = j.Spec.Selector
	default:
		return nil, fmt.Errorf("skiff why: %q is not a type it knows (pod, deployment, replicaset, statefulset, daemonset, job, service)", kind)
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, err
	}
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("%s has no pods (selector %s): its controller has not created any; see kubectl describe %s", ref, sel, ref)
	}
	return list.Items, nil
}

// explainPod gathers the pod's node and events and explains it.
func explainPod(ctx context.Context, client kubernetes.Interface, p *corev1.Pod) why.Report {
	var node *corev1.Node
	if p.Spec.NodeName != "" {
		n, err := client.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err == nil {
			node = n
		} else if !apierrors.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "skiff why: reading node %s: %v\n", p.Spec.NodeName, err)
		}
	}
	sel := fields.Set{"involvedObject.name": p.Name, "involvedObject.uid": string(p.UID)}.AsSelector().String()
	evs, err := client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	var events []corev1.Event
	if err == nil {
		events = evs.Items
	}
	return why.Explain(p, node, events, time.Now())
}

func isServiceKind(kind string) bool {
	switch strings.ToLower(kind) {
	case "service", "services", "svc":
		return true
	}
	return false
}

// explainService reads the Service, the pods and NetworkPolicies of its
// namespace and its EndpointSlices, and explains it.
func explainService(ctx context.Context, client kubernetes.Interface, ns, name string) (why.Report, error) {
	svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return why.Report{}, fmt.Errorf("reading service %s/%s: %w", ns, name, err)
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return why.Report{}, fmt.Errorf("listing pods in %s: %w", ns, err)
	}
	slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{discoveryv1.LabelServiceName: name}.String(),
	})
	if err != nil {
		return why.Report{}, fmt.Errorf("listing EndpointSlices of service %s/%s: %w", ns, name, err)
	}
	var policies []networkingv1.NetworkPolicy
	if list, err := client.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{}); err == nil {
		policies = list.Items
	} else {
		fmt.Fprintf(os.Stderr, "skiff why: listing NetworkPolicies in %s (left out): %v\n", ns, err)
	}
	return why.ExplainService(svc, pods.Items, slices.Items, policies, time.Now()), nil
}
