package printers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func appsPrinters() map[schema.GroupKind]kindPrinter {
	apps := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "apps", Kind: kind} }
	return map[schema.GroupKind]kindPrinter{
		apps("Deployment"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", typeString, "Ready pods out of the pods wanted."),
			column("Up-to-date", typeInteger, "Pods that run the latest pod template."),
			column("Available", typeInteger, "Pods that have been ready for at least minReadySeconds."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the deployment manages"),
		}, func(d *appsv1.Deployment, now time.Time) []interface{} {
			names, images := containerCells(d.Spec.Template.Spec.Containers)
			return []interface{}{
				d.Name,
				fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, int32Or(d.Spec.Replicas, 1)),
				int64(d.Status.UpdatedReplicas),
				int64(d.Status.AvailableReplicas),
				since(d.CreationTimestamp, now),
				names, images, selectorString(d.Spec.Selector),
			}
		}),
		apps("ReplicaSet"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", typeInteger, "The number of pods wanted."),
			column("Current", typeInteger, "The number of pods that exist."),
			column("Ready", typeInteger, "The number of pods that are ready."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the replica set manages"),
		}, func(r *appsv1.ReplicaSet, now time.Time) []interface{} {
			names, images := containerCells(r.Spec.Template.Spec.Containers)
			return []interface{}{
				r.Name,
				int64(int32Or(r.Spec.Replicas, 1)),
				int64(r.Status.Replicas),
				int64(r.Status.ReadyReplicas),
				since(r.CreationTimestamp, now),
				names, images, metav1.FormatLabelSelector(r.Spec.Selector),
			}
		}),
		apps("DaemonSet"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", typeInteger, "The number of nodes that should run the daemon pod."),
			column("Current", typeInteger, "The number of nodes that run at least one daemon pod."),
			column("Ready", typeInteger, "The number of nodes whose daemon pod is ready."),
			column("Up-to-date", typeInteger, "The number of nodes whose daemon pod runs the latest template."),
			column("Available", typeInteger, "The number of nodes whose daemon pod is available."),
			column("Node Selector", typeString, "The node labels the daemon pods are restricted to."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
			selectorColumn("the daemon set manages"),
		}, func(d *appsv1.DaemonSet, now time.Time) []interface{} {
			names, images := containerCells(d.Spec.Template.Spec.Containers)
			return []interface{}{
				d.Name,
				int64(d.Status.DesiredNumberScheduled),
				int64(d.Status.CurrentNumberScheduled),
				int64(d.Status.NumberReady),
				int64(d.Status.UpdatedNumberScheduled),
				int64(d.Status.NumberAvailable),
				labels.FormatLabels(d.Spec.Template.Spec.NodeSelector),
				since(d.CreationTimestamp, now),
				names, images, metav1.FormatLabelSelector(d.Spec.Selector),
			}
		}),
		apps("StatefulSet"): printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", typeString, "Ready pods out of the pods wanted."),
			ageColumn(),
			containersColumn(),
			imagesColumn(),
		}, func(s *appsv1.StatefulSet, now time.Time) []interface{} {
			names, images := containerCells(s.Spec.Template.Spec.Containers)
			return []interface{}{
				s.Name,
				fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, int32Or(s.Spec.Replicas, 1)),
				since(s.CreationTimestamp, now),
				names, images,
			}
		}),
		apps("ControllerRevision"): printerErr([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Controller", typeString, "The kind.group/name of the object that owns the revision."),
			column("Revision", typeString, "The revision number."),
			ageColumn(),
		}, func(r *appsv1.ControllerRevision, now time.Time) ([]interface{}, error) {
			controller := none
			if ref := metav1.GetControllerOf(r); ref != nil {
				gv, err := schema.ParseGroupVersion(ref.APIVersion)
				if err != nil {
					return nil, fmt.Errorf("controller reference of %s: %w", r.Name, err)
				}
				controller = ownerName(gv.WithKind(ref.Kind).GroupKind(), ref.Name)
			}
			return []interface{}{r.Name, controller, strconv.FormatInt(r.Revision, 10), since(r.CreationTimestamp, now)}, nil
		}),
	}
}

// ownerName prints a reference as kind.group/name in lower case (kind/name
// for the core group), or just the name when the kind is unknown.
func ownerName(gk schema.GroupKind, name string) string {
	if gk.Empty() {
		return name
	}
	return strings.ToLower(gk.String()) + "/" + name
}
