// Package csrsigner approves and signs the CertificateSigningRequests of
// nodes, with the cluster CA: the part of kube-controller-manager's
// csrapproving and csrsigning controllers that joining nodes need.
//
// Approval. The controller approves on its own (condition Approved, reason
// AutoApproved) only requests that are exactly what a node asks for, by a
// requester entitled to ask:
//
//   - kubernetes.io/kube-apiserver-client-kubelet, subject
//     CN=system:node:NAME O=system:nodes, no subject alternative names,
//     usages within {digital signature, key encipherment, client auth} with
//     client auth: requested with a bootstrap token (group
//     system:bootstrappers), or by system:node:NAME renewing its own;
//   - kubernetes.io/kubelet-serving, same subject, DNS and IP names only
//     (at least one), none of them protected (the kubernetes Service's
//     names and Options.ProtectedDNSNames/ProtectedNetworks, so a node
//     cannot pose as the API server), usages within {digital signature,
//     key encipherment, server auth} with server auth: requested by
//     system:node:NAME itself or with a bootstrap token.
//
// Anything else waits for a person (kubectl certificate approve|deny).
//
// Signing. An approved request (not Denied, not Failed, no certificate
// yet) for kubernetes.io/kube-apiserver-client-kubelet,
// kubernetes.io/kubelet-serving or kubernetes.io/kube-apiserver-client is
// checked against its signer's rules and signed with the CA for
// spec.expirationSeconds, capped at Options.MaxValidity (default one
// year, the default when it is unset too). A request that breaks its
// signer's rules gets the Failed condition (reason SignerValidationFailure)
// and is never signed. Requests for other signers are left alone.
//
//	         approve (auto or kubectl)            sign
//	pending ────────────────────────> Approved ─────────> Approved,Issued
//	   │                                 │
//	   │ deny (kubectl)                  │ signer rules broken
//	   ▼                                 ▼
//	 Denied (never signed)          Approved,Failed (never signed)
//
// The decisions are pure functions in decide.go; the controller reads the
// request from its informer, applies them through the approval and status
// subresources, and relies on the resourceVersion of what it read, so a
// request is never approved or signed twice.
package csrsigner
