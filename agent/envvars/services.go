package envvars

import (
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// The API server's own service, whose variables every container gets even
// when service links are off.
const (
	kubernetesServiceName      = "kubernetes"
	kubernetesServiceNamespace = "default"
)

// ServiceEnv returns the service environment variables of a pod in
// namespace, in a stable order (services by name, then the fixed order of
// each service's variables). services may hold the services of the pod's
// namespace and default/kubernetes; others are ignored. The variables of
// default/kubernetes are always present; those of the namespace's services
// only when serviceLinks is true, and then a "kubernetes" service of the
// pod's own namespace takes the place of default's. Services without a
// cluster IP (headless, ExternalName) have no variables.
func ServiceEnv(namespace string, serviceLinks bool, services []*v1.Service) []EnvVar {
	chosen := map[string]*v1.Service{}
	for _, s := range services {
		if s != nil && s.Namespace == kubernetesServiceNamespace && s.Name == kubernetesServiceName && hasClusterIP(s) {
			chosen[s.Name] = s
		}
	}
	if serviceLinks {
		for _, s := range services {
			if s != nil && s.Namespace == namespace && hasClusterIP(s) {
				chosen[s.Name] = s
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []EnvVar
	for _, n := range names {
		out = append(out, serviceVars(chosen[n])...)
	}
	return out
}

func hasClusterIP(s *v1.Service) bool {
	ip := s.Spec.ClusterIP
	return ip != "" && ip != v1.ClusterIPNone
}

// envName turns a service or port name into the form used in variable
// names: upper case, dashes as underscores.
func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// serviceVars gives one service's variables: the FOO_SERVICE_* ones and the
// Docker-link style FOO_PORT* ones.
func serviceVars(s *v1.Service) []EnvVar {
	prefix := envName(s.Name)
	ip := s.Spec.ClusterIP
	out := []EnvVar{{Name: prefix + "_SERVICE_HOST", Value: ip}}
	ports := s.Spec.Ports
	if len(ports) == 0 {
		return out
	}
	out = append(out, EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(ports[0].Port))})
	for _, p := range ports {
		if p.Name != "" {
			out = append(out, EnvVar{Name: prefix + "_SERVICE_PORT_" + envName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(v1.ProtocolTCP)
		}
		port := strconv.Itoa(int(p.Port))
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out = append(out, EnvVar{Name: prefix + "_PORT", Value: url})
		}
		link := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out = append(out,
			EnvVar{Name: link, Value: url},
			EnvVar{Name: link + "_PROTO", Value: strings.ToLower(proto)},
			EnvVar{Name: link + "_PORT", Value: port},
			EnvVar{Name: link + "_ADDR", Value: ip},
		)
	}
	return out
}
