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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/why"
)

// maxExplained bounds how many pods of a workload `skiff why` explains.
const maxExplained = 5

// whyCommand answers "why is my pod not running?" for a pod or for the
// pods of a workload.
func whyCommand() *cobra.Command {
	var namespace, kubeconfig string
	c := &cobra.Command{
		Use:   "why [TYPE/]NAME",
		Short: "Explain why a pod (or a workload's pods) is not running",
		Long: "Explain why a pod is not running or not ready: scheduling (with the reasons per node),\n" +
			"node health, containers waiting or crashing, readiness, deletion, and recent warnings.\n" +
			"TYPE is pod (the default), deployment, replicaset, statefulset, daemonset or job.",
		Example: "  skiff why web-7bfb4bc78d-747lr\n  skiff why deployment/web -n shop",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, ns, err := whyClient(kubeconfig, namespace)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
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
		return nil, fmt.Errorf("skiff why: %q is not a type it knows (pod, deployment, replicaset, statefulset, daemonset, job)", kind)
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
