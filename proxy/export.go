package proxy

import (
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"
)

// NewWithNFT is New with the nftables interface supplied by the caller, for
// programs that must not program the host's own ruleset: a benchmark whose
// nft runs happen inside a network namespace of its own, or a
// knftables.Fake. nft must be bound to family ip and to cfg.TableName (the
// default "skiff-proxy" when empty).
func NewWithNFT(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg Config, nft knftables.Interface) (*Proxier, error) {
	return newProxier(client, factory, cfg, nft)
}
