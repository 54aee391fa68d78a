package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/skiff-sh/skiff/pki"
)

// NodeCredentials are the certificates the server's own agent runs on.
type NodeCredentials struct {
	Kubeconfig              string
	ServingCert, ServingKey string
	CACertPEM               []byte
}

// IssueNodeCredentials gives the agent that runs beside a server (on the
// same machine, with access to the CA) its node identity directly,
// without the join token a remote agent uses: a client certificate for
// system:node:NAME in system:nodes, and a serving certificate for the
// agent's API with the node's addresses. Files go to agentDir/pki and are
// reused while fit.
func IssueNodeCredentials(serverDataDir, agentDir, nodeName string, apiURL string, ips []net.IP, hostnames []string) (*NodeCredentials, error) {
	ca, err := pki.EnsureCA(filepath.Join(serverDataDir, "pki"), "ca", time.Now())
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	dir := filepath.Join(agentDir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	certPEM, keyPEM, err := pki.EnsureClientCert(dir, "node", "system:node:"+nodeName, []string{"system:nodes"}, ca, now)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "node.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, apiURL, "skiff", "system:node:"+nodeName, ca.CertPEM, certPEM, keyPEM); err != nil {
		return nil, err
	}
	ips = append(ips, net.IPv4(127, 0, 0, 1))
	if _, err := pki.EnsureServing(dir, ca, "serving", append(hostnames, "localhost"), ips, now); err != nil {
		return nil, err
	}
	return &NodeCredentials{
		Kubeconfig:  kubeconfig,
		ServingCert: filepath.Join(dir, "serving.crt"),
		ServingKey:  filepath.Join(dir, "serving.key"),
		CACertPEM:   ca.CertPEM,
	}, nil
}
