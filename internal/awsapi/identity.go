package awsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsauth"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// AccessKeyIndex indexes AccessKeys by status.accessKeyId (registered by the manager).
const AccessKeyIndex = "status.accessKeyId"

// accessKeyCache keeps opened secret access keys, by key id and the AccessKey's
// resourceVersion (a change of the object, such as disabling it, is seen at once).
type accessKeyCache struct {
	mu sync.Mutex
	m  map[string]openedKey
}

type openedKey struct {
	resourceVersion string
	secret          string
	identity        Identity
}

// authenticate verifies the request's signature and returns who signed it: a ServiceAccount,
// through a web-identity session (its claims) or a static access key (its AccessKey).
func (s *Server) authenticate(r *http.Request, body []byte, service string) (Identity, error) {
	var id Identity
	opts := awsauth.VerifyOptions{Now: s.wallClock, Service: service, Lookup: func(accessKeyID, sessionToken string) (string, error) {
		if sessionToken != "" {
			secret, c, err := awsauth.OpenSession(s.Certs.SessionKey(), accessKeyID, sessionToken, s.wallClock())
			if err != nil {
				return "", err
			}
			id = Identity{Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, UID: c.UID, RoleARN: c.RoleARN, SessionName: c.SessionName}
			return secret, nil
		}
		secret, who, err := s.accessKey(r.Context(), accessKeyID)
		id = who
		return secret, err
	}}
	if _, err := awsauth.Verify(r, body, opts); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func unrecognized() error {
	return awserr.New(awsauth.UnrecognizedClient, awsauth.MsgUnrecognizedClient)
}

// accessKey finds the active AccessKey with the id and opens its secret.
func (s *Server) accessKey(ctx context.Context, accessKeyID string) (string, Identity, error) {
	if !accesskeys.LooksLikeID(accessKeyID) {
		return "", Identity{}, unrecognized()
	}
	list := &v1alpha1.AccessKeyList{}
	if err := s.Cache.List(ctx, list, client.MatchingFields{AccessKeyIndex: accessKeyID}); err != nil {
		return "", Identity{}, err
	}
	if len(list.Items) != 1 || list.Items[0].Spec.Disabled || !list.Items[0].DeletionTimestamp.IsZero() {
		return "", Identity{}, unrecognized()
	}
	ak := &list.Items[0]
	id := Identity{Namespace: ak.Namespace, ServiceAccount: ak.Spec.ServiceAccountName, UID: ak.Status.ServiceAccountUID}
	s.keys.mu.Lock()
	if k, ok := s.keys.m[accessKeyID]; ok && k.resourceVersion == ak.ResourceVersion {
		s.keys.mu.Unlock()
		return k.secret, k.identity, nil
	}
	s.keys.mu.Unlock()
	secret, err := accesskeys.Open(ctx, s.Keys, ak.Namespace, ak.Name, accessKeyID, ak.Status.SealedSecret)
	if err != nil {
		log.FromContext(ctx).Info("an access key does not open", "accessKey", ak.Namespace+"/"+ak.Name)
		return "", Identity{}, unrecognized()
	}
	s.keys.mu.Lock()
	if s.keys.m == nil || len(s.keys.m) > 10000 {
		s.keys.m = map[string]openedKey{}
	}
	s.keys.m[accessKeyID] = openedKey{resourceVersion: ak.ResourceVersion, secret: secret, identity: id}
	s.keys.mu.Unlock()
	return secret, id, nil
}

// serveSTS answers AssumeRoleWithWebIdentity: the web identity token must be a ServiceAccount
// token with the API's audience (checked with a TokenReview); the credentials issued act as that
// ServiceAccount until they expire (the request's DurationSeconds: AWS's 15 minutes to 12 hours).
// Revoking the ServiceAccount's RBAC, or deleting the ServiceAccount (Authorizer checks that the
// one the session was issued to still exists), takes effect within the decision cache's seconds.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	requestID := newRequestID()
	in, err := awsauth.ParseAssumeRoleWithWebIdentity(body)
	if err != nil {
		awsauth.WriteSTSErr(w, err, requestID)
		return
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: in.WebIdentityToken, Audiences: []string{s.TokenAudience}}}
	if err := s.Direct.Create(r.Context(), review); err != nil {
		log.FromContext(r.Context()).Info("a TokenReview failed", "error", reason(err))
		awsauth.WriteSTSError(w, http.StatusBadRequest, "IDPCommunicationError", "The token could not be checked; try again.", requestID)
		return
	}
	ns, sa, ok := serviceAccountOf(review)
	if !ok {
		awsauth.WriteSTSError(w, http.StatusBadRequest, "InvalidIdentityToken",
			"The web identity token is not a valid ServiceAccount token for the audience "+s.TokenAudience+".", requestID)
		return
	}
	expiry := s.wallClock().Add(time.Duration(in.DurationSeconds) * time.Second).Truncate(time.Second)
	claims := awsauth.Claims{Namespace: ns, ServiceAccount: sa, UID: review.Status.User.UID, RoleARN: in.RoleARN, SessionName: in.RoleSessionName, Expiry: expiry}
	akid, secret, token, err := awsauth.IssueSession(s.Certs.SessionKey(), claims)
	if err != nil {
		awsauth.WriteSTSError(w, http.StatusInternalServerError, "InternalFailure", "The credentials could not be issued.", requestID)
		return
	}
	awsauth.WriteAssumeRoleResponse(w, awsauth.AssumeOutput{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token, Expiration: expiry,
		SubjectFromWebIdentityToken: review.Status.User.Username, AssumedRoleARN: awsauth.AssumedRoleARN(in.RoleARN, in.RoleSessionName),
		AssumedRoleID: roleID(review.Status.User.UID) + ":" + in.RoleSessionName,
		Audience:      s.TokenAudience, Provider: "kubernetes", RequestID: requestID})
}

// serviceAccountOf is the ServiceAccount an authenticated review names, with the audience.
func serviceAccountOf(review *authenticationv1.TokenReview) (string, string, bool) {
	st := review.Status
	if !st.Authenticated || st.Error != "" {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || len(st.User.UID) < 16 {
		return "", "", false
	}
	return ns, name, true
}

// roleID is an AWS-shaped role id (AROA and 16 characters) from the ServiceAccount's UID.
func roleID(uid string) string {
	id := strings.ToUpper(strings.ReplaceAll(uid, "-", "")) + "0000000000000000"
	return "AROA" + id[:16]
}

// serveGetCallerIdentity answers STS's GetCallerIdentity for a signed request (service sts), as
// STS does, with no permission needed: a session is its assumed role (the ARN
// AssumeRoleWithWebIdentity answered with, and the role's account); an access key is an IAM-user
// shaped ARN named after its ServiceAccount, in the account of the secrets' ARNs (by default the
// namespace).
func (s *Server) serveGetCallerIdentity(w http.ResponseWriter, r *http.Request, body []byte) {
	requestID := newRequestID()
	if err := awsauth.ParseGetCallerIdentity(body); err != nil {
		awsauth.WriteSTSErr(w, err, requestID)
		return
	}
	id, err := s.authenticate(r, body, "sts")
	if err != nil {
		awsauth.WriteSTSErr(w, err, requestID)
		return
	}
	// Credentials of a ServiceAccount that is gone answer for nobody (as in every other call).
	if live, err := s.Authz.Live(r.Context(), id); err != nil || !live {
		if err != nil {
			awsauth.WriteSTSError(w, http.StatusInternalServerError, "InternalFailure", "The caller could not be checked; try again.", requestID)
			return
		}
		awsauth.WriteSTSError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.", requestID)
		return
	}
	partition, account := s.ARN.In(id.Namespace)
	out := awsauth.CallerIdentity{RequestID: requestID}
	if id.SessionName != "" {
		// The role is the one the session was asked for (AWS_ROLE_ARN: any role-shaped ARN, it
		// grants nothing); what the session proves is its ServiceAccount, in UserId's role id.
		out.Arn = awsauth.AssumedRoleARN(id.RoleARN, id.SessionName)
		if out.Arn == "" {
			out.Arn = "arn:" + partition + ":sts::" + account + ":assumed-role/" + id.ServiceAccount + "/" + id.SessionName
		}
		out.UserID = roleID(id.UID) + ":" + id.SessionName
		out.Account = strings.SplitN(out.Arn, ":", 6)[4]
	} else {
		out.Arn = "arn:" + partition + ":iam::" + account + ":user/" + id.ServiceAccount
		out.UserID = userID(id.Namespace, id.ServiceAccount)
		out.Account = account
	}
	awsauth.WriteCallerIdentityResponse(w, out)
}

// userID is an AWS-shaped user id (AIDA and 16 characters) for an access key's ServiceAccount.
func userID(namespace, serviceAccount string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + serviceAccount))
	return "AIDA" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}
