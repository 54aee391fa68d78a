// Package join lets a machine join a Skiff cluster as a node, and lets the
// server hand out the tokens it joins with.
//
// # The join token
//
// A join token is one opaque string:
//
//	SKIFF1::sha256:<64 hex digits>::<id>.<secret>
//	        \___ CA hash ________/  \__ bootstrap token __/
//
// SKIFF1 names the format (version 1). The CA hash is pki.CAHash of the
// cluster CA: "sha256:" and the hex SHA-256 of the CA certificate's
// SubjectPublicKeyInfo, as kubeadm's --discovery-token-ca-cert-hash. The
// rest is a Kubernetes bootstrap token: a public ID of 6 characters and a
// secret of 16, both from [a-z0-9]. A string that is not in this form is
// refused with an error starting "not a Skiff join token:"; errors never
// repeat the secret.
//
// On the server each token is a kubeadm-style bootstrap token Secret,
// kube-system/bootstrap-token-<id>, of type bootstrap.kubernetes.io/token
// with the data token-id, token-secret, usage-bootstrap-authentication
// "true", description and, unless the token never expires, expiration
// (RFC 3339). The API server authenticates "Authorization: Bearer
// <id>.<secret>" as the user system:bootstrap:<id> in the group
// system:bootstrappers, which may only create and read
// CertificateSigningRequests. `skiff server` keeps a token that never
// expires in DATA_DIR/node-token (EnsureServerToken); `skiff token`
// creates, lists and deletes others (CreateToken, ListTokens, DeleteToken).
//
// # Joining
//
// Bootstrap runs on the joining machine:
//
//	GET /cacerts (anonymous, TLS not yet trusted)
//	  -> the CA whose hash is the token's, else "the server's CA does not
//	     match the token's hash: wrong server or token"
//	  -> the server's TLS certificate must chain to that CA
//	from here on TLS is verified against the CA, and the token is the bearer:
//	  -> CSR kubernetes.io/kube-apiserver-client-kubelet
//	     CN=system:node:NAME, O=system:nodes, client auth
//	  -> CSR kubernetes.io/kubelet-serving, same subject, the node's IPs
//	     and host names, server auth
//	  -> the server's csrsigner controller approves and signs both
//	  -> DIR/ca.crt, client.crt/.key, serving.crt/.key, node.kubeconfig
//
// A later Bootstrap with certificates still valid for the node returns
// them without touching the token; one whose certificates near their end
// (less than a fifth of their life left), or whose addresses changed,
// renews them with the node's own client certificate while it is valid, as
// a kubelet rotates its certificates. Only a node without a usable client
// certificate needs the token again.
package join
