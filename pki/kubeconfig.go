package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig file at path with one cluster, one
// user and one context, all certificate data embedded (no file
// references), so the file works wherever it is copied. The context is
// named after the cluster and is the current context. The file is written
// atomically with mode 0600 since it holds a private key; a missing parent
// directory is created with mode 0700.
func WriteKubeconfig(path, server, clusterName, user string, caPEM, certPEM, keyPEM []byte) error {
	switch {
	case server == "":
		return errors.New("write kubeconfig: empty server URL")
	case clusterName == "":
		return errors.New("write kubeconfig: empty cluster name")
	case user == "":
		return errors.New("write kubeconfig: empty user name")
	}

	cluster := clientcmdapi.NewCluster()
	cluster.Server = server
	cluster.CertificateAuthorityData = caPEM

	auth := clientcmdapi.NewAuthInfo()
	auth.ClientCertificateData = certPEM
	auth.ClientKeyData = keyPEM

	kctx := clientcmdapi.NewContext()
	kctx.Cluster = clusterName
	kctx.AuthInfo = user

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = cluster
	cfg.AuthInfos[user] = auth
	cfg.Contexts[clusterName] = kctx
	cfg.CurrentContext = clusterName

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("write kubeconfig %s: create directory: %w", path, err)
	}
	// clientcmd.WriteToFile keeps the mode of a file that already exists,
	// so write to a fresh 0600 temporary file and rename it into place.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	tmpName := tmp.Name()
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.Chmod(tmpName, keyMode); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("write kubeconfig %s: set mode: %w", path, err)
	}
	if err := clientcmd.WriteToFile(*cfg, tmpName); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("write kubeconfig %s: rename: %w", path, err)
	}
	return nil
}
