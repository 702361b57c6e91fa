// Command kubecheck checks the manifests `helm template` renders from deploy/helm/smppgw, offline:
// kubeconform needs JSON schemas from the network, so instead each document is decoded strictly
// into the Kubernetes API's own Go types (an unknown or duplicate field, or a wrong type, is an
// error), and the chart's promises are checked: probes on /healthz and /readyz, a non-root pod with
// a read-only root file system, Service target ports that name container ports.
//
//	helm template smppgw deploy/helm/smppgw | (cd deploy/helm/kubecheck && go run .)
//
// It is a module of its own so that the gateway's go.mod does not carry the Kubernetes API.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(1)
	}
	kinds, err := check(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d manifests valid (%s)\n", len(kinds), strings.Join(kinds, ", "))
}

func check(in []byte) ([]string, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(appsv1.AddToScheme(scheme))
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

	var kinds []string
	var deployments []*appsv1.Deployment
	var services []*corev1.Service
	for i, doc := range splitYAML(in) {
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		kinds = append(kinds, gvk.Kind)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			deployments = append(deployments, o)
		case *corev1.Service:
			services = append(services, o)
		case *corev1.ConfigMap, *corev1.Secret, *corev1.PersistentVolumeClaim, *corev1.ServiceAccount:
		default:
			return nil, fmt.Errorf("document %d: unexpected kind %s", i+1, gvk)
		}
	}
	if len(deployments) != 1 || len(services) != 2 {
		return nil, fmt.Errorf("want one Deployment and two Services (SMPP, API), got %d and %d", len(deployments), len(services))
	}
	d := deployments[0]
	if err := checkDeployment(d); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
	}
	ports := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if !ports[p.TargetPort.StrVal] {
				return nil, fmt.Errorf("service %s: port %s targets %q, not a named container port", s.Name, p.Name, p.TargetPort.String())
			}
		}
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				return nil, fmt.Errorf("service %s: selector %s=%s does not select the pods", s.Name, k, v)
			}
		}
	}
	return kinds, nil
}

func checkDeployment(d *appsv1.Deployment) error {
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return fmt.Errorf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	switch {
	case pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot:
		return errors.New("pod securityContext.runAsNonRoot is not true")
	case c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem:
		return errors.New("container securityContext.readOnlyRootFilesystem is not true")
	case c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation:
		return errors.New("container securityContext.allowPrivilegeEscalation is not false")
	case pod.EnableServiceLinks == nil || *pod.EnableServiceLinks:
		return errors.New("enableServiceLinks is not false (smppgw refuses unknown SMPPGW_ variables)")
	case c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz":
		return errors.New("liveness probe is not GET /healthz")
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz":
		return errors.New("readiness probe is not GET /readyz")
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	for _, p := range []string{"/etc/smppgw", "/var/lib/smppgw"} {
		if !mounts[p] {
			return fmt.Errorf("nothing mounted at %s", p)
		}
	}
	return nil
}

// splitYAML cuts a multi-document stream at its "---" lines, dropping documents with only comments.
func splitYAML(in []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), in...), []byte("\n---")) {
		empty := true
		for _, line := range strings.Split(string(d), "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}
