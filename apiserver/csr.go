package apiserver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// What the API server does for nodes joining the cluster:
//
//	GET /cacerts                     the cluster CA in PEM, to anyone: a joining
//	                                 node compares its hash with its join token's
//	bootstrap token users            may only create and read CSRs (403 otherwise)
//	POST certificatesigningrequests  spec.username, uid, groups and extra are the
//	                                 caller's, whatever the body said
//	PUT  .../NAME/approval           changes status.conditions only
//
// withNodeJoining runs after authentication and before routing; it holds
// the bootstrap restriction and serves the approval subresource, so the
// generic subresource dispatch needs no entry for it.

// systemMastersGroup may do anything; no signer-issued client certificate
// may carry it.
const systemMastersGroup = "system:masters"

// withNodeJoining restricts bootstrap token users and serves the approval
// subresource of CertificateSigningRequests.
func (s *Server) withNodeJoining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := UserFrom(r.Context()); ok && isBootstrapUser(u) {
			if err := bootstrapAllowed(u, r); err != nil {
				writeError(w, output{media: mediaJSON}, err)
				return
			}
		}
		if !strings.HasSuffix(r.URL.Path, "/approval") {
			next.ServeHTTP(w, r)
			return
		}
		if info, ok := parseRequest(r); ok && info.Subresource == "approval" &&
			info.GV == certificatesv1.SchemeGroupVersion && info.Resource == csrResource.Resource && info.Namespace == "" {
			s.serveCSRApproval(w, r, info)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cacertsResource names /cacerts in its error answers.
var cacertsResource = schema.GroupResource{Resource: "cacerts"}

// serveCACerts answers GET /cacerts with the cluster CA bundle.
func (s *Server) serveCACerts(w http.ResponseWriter, r *http.Request, caPEM []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, output{media: mediaJSON}, apierrors.NewMethodNotSupported(cacertsResource, r.Method))
		return
	}
	if len(caPEM) == 0 {
		writeError(w, output{media: mediaJSON}, apierrors.NewNotFound(cacertsResource, ""))
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(caPEM)
	}
}

// admitCSR is the create admission of a CertificateSigningRequest: the
// requester fields come from the authenticated caller, never from the
// body, and no request for an API client certificate may name
// system:masters.
func (s *Server) admitCSR(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
	if u, ok := UserFrom(ctx); ok {
		csr.Spec.Username = u.Name
		csr.Spec.Groups = slices.Clone(u.Groups)
	}
	if csr.Spec.SignerName == certificatesv1.KubeAPIServerClientSignerName {
		if req := parsePEMRequest(csr.Spec.Request); req != nil && slices.Contains(req.Subject.Organization, systemMastersGroup) {
			return apierrors.NewForbidden(csrResource, csr.Name, fmt.Errorf(
				"use of the %s signer with the %s group is not allowed", certificatesv1.KubeAPIServerClientSignerName, systemMastersGroup))
		}
	}
	return nil
}

// parsePEMRequest parses a PEM certificate request, or returns nil;
// validation reports what is wrong with one that does not parse.
func parsePEMRequest(data []byte) *x509.CertificateRequest {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil
	}
	return req
}

// serveCSRApproval serves GET and PUT of certificatesigningrequests/NAME/
// approval. A PUT takes only status.conditions from the body (with its
// resourceVersion as a precondition); everything else stays as stored.
func (s *Server) serveCSRApproval(w http.ResponseWriter, r *http.Request, info requestInfo) {
	out, err := negotiate(r)
	if err != nil {
		writeError(w, output{media: mediaJSON}, err)
		return
	}
	res, ok := s.catalog.Lookup(info.GV.WithResource(info.Resource))
	if !ok {
		writeError(w, out, apierrors.NewNotFound(csrResource, info.Name))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), managerKey{}, managerName(r)))
	rc := &reqContext{srv: s, w: w, r: r, info: info, res: res, out: out}
	switch info.Verb {
	case "get":
		s.serveGet(rc)
		return
	case "update":
	default:
		rc.fail(apierrors.NewMethodNotSupported(res.GroupResource(), info.Verb+" of approval"))
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		rc.fail(err)
		return
	}
	body := s.newBodyObject(res).(*certificatesv1.CertificateSigningRequest)
	if err := s.decodeBody(rc, body); err != nil {
		rc.fail(err)
		return
	}
	if body.Name != info.Name {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", body.Name, info.Name)))
		return
	}
	now := metav1.NewTime(s.now().Truncate(time.Second))
	stored, _, err := s.updateObject(rc.ctx(), res, "", info.Name, updateOptions{subresource: "status", dryRun: dry}, func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, err404(res, info.Name)
		}
		next := cur.(*certificatesv1.CertificateSigningRequest)
		next.Status.Conditions = approvalConditions(body.Status.Conditions, next.Status.Conditions, now)
		mustAccessor(next).SetResourceVersion(body.ResourceVersion)
		return next, nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	s.respond(rc, http.StatusOK, stored)
}

// approvalConditions completes the conditions a client sent: status True
// when unset, and the timestamps the server fills in (lastUpdateTime when
// unset; lastTransitionTime kept from the stored condition of the same type
// and status, else now).
func approvalConditions(sent, stored []certificatesv1.CertificateSigningRequestCondition, now metav1.Time) []certificatesv1.CertificateSigningRequestCondition {
	out := make([]certificatesv1.CertificateSigningRequestCondition, 0, len(sent))
	for _, c := range sent {
		if c.Status == "" {
			c.Status = corev1.ConditionTrue
		}
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
			for _, old := range stored {
				if old.Type == c.Type && old.Status == c.Status && !old.LastTransitionTime.IsZero() {
					c.LastTransitionTime = old.LastTransitionTime
				}
			}
		}
		out = append(out, c)
	}
	return out
}
