// Package awsapi is the AWS Secrets Manager-compatible API: AWS JSON 1.1 over HTTPS, every request
// SigV4-signed, with STS's AssumeRoleWithWebIdentity for workloads (a projected ServiceAccount
// token, checked with a TokenReview) and static access keys for tools (AccessKey objects). Each
// operation is a Kubernetes verb, authorised with a SubjectAccessReview for the caller's
// ServiceAccount. Reads are served by any replica from its cache; writes go to the secret's
// reconcile on the leader through the store's request channel (requests.go).
package awsapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi/wire"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsauth"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
)

// MaxBody is the largest request body the API reads: a 65,536-byte value, base64 for a binary
// one, and the rest of the request fit well within it. A larger body is refused unread.
const MaxBody = 256 * 1024

// Config is what the server is built from.
type Config struct {
	// Cache reads ManagedSecrets, SecretVersions, RotationPolicies and AccessKeys.
	Cache client.Client
	// Direct writes (and reads what must not be stale), with the operator's identity.
	Direct client.Client
	Store  *store.Store
	Keys   envelope.KeyProvider
	Certs  *Certs
	Authz  *Authorizer
	// ARN shapes the ARNs it answers with (the same as status.id).
	ARN objects.ARNParts
	// TokenAudience is the audience web-identity tokens must carry.
	TokenAudience string
	// Now is the clock of the secrets' lifecycle (deletion dates, access days).
	Now func() time.Time
	// WallClock checks signatures and sessions (nil: the system clock); a test moves it to see
	// credentials expire.
	WallClock func() time.Time
}

// Server answers the API.
type Server struct {
	Config
	writer writer
	keys   accessKeyCache
}

// NewServer returns a server; writes time out after writeTimeout.
func NewServer(c Config, writeTimeout time.Duration) *Server {
	return &Server{Config: c, writer: writer{Client: c.Direct, Reader: c.Direct, Timeout: writeTimeout}}
}

// ServeHTTP dispatches STS (form-encoded, unsigned: the web identity token authenticates) and
// Secrets Manager (X-Amz-Target, SigV4-signed) requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer carries a request id, as AWS's do (SDKs report it with errors).
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		wire.WriteError(w, awserr.New("UnknownOperationException", ""))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		wire.WriteError(w, awserr.New("SerializationException", "the request body could not be read"))
		return
	}
	if len(body) > MaxBody {
		w.Header().Set("Content-Type", wire.ContentType)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = w.Write(wire.ErrorBody(awserr.ValidationException, fmt.Sprintf("The request body is larger than %d bytes.", MaxBody)))
		return
	}
	defer clear(body)
	target := r.Header.Get("X-Amz-Target")
	if target == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		op := "AssumeRoleWithWebIdentity" // also the label of a body naming another action
		if awsauth.STSAction(body) == awsauth.ActionGetCallerIdentity {
			op = awsauth.ActionGetCallerIdentity
			s.serveGetCallerIdentity(rec, r, body)
		} else {
			s.serveSTS(rec, r, body)
		}
		metrics.Requests.WithLabelValues(metrics.InterfaceAPI, op, metrics.ResultOfStatus(rec.status)).Inc()
		return
	}
	op, err := wire.ParseTarget(target)
	if err != nil {
		wire.WriteError(w, err)
		return
	}
	opLabel := "unsupported"
	if wire.Supported(op) {
		opLabel = op
	}
	id, err := s.authenticate(r, body, "secretsmanager")
	if err != nil {
		metrics.Requests.WithLabelValues(metrics.InterfaceAPI, opLabel, metrics.ResultOfStatus(awsauth.StatusOf(err))).Inc()
		w.Header().Set("Content-Type", wire.ContentType)
		w.WriteHeader(awsauth.StatusOf(err))
		code, msg := "InternalServiceError", "An error occurred on the server side."
		if e := wire.AsError(err); e != nil && awserr.CodeOf(err) != "" {
			code, msg = e.Code, e.Message
		}
		_, _ = w.Write(wire.ErrorBody(code, msg)) //nolint:gosec // G705: a JSON body with the JSON content type, not HTML
		return
	}
	out, err := s.dispatch(r.Context(), id, op, body)
	metrics.ObserveRequest(metrics.InterfaceAPI, opLabel, err)
	if err != nil {
		if awserr.CodeOf(err) == "" {
			log.FromContext(r.Context()).Info("an API call failed", "operation", op, "error", err.Error())
		}
		wire.WriteError(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

// dispatch decodes the input (shape validation first, as AWS) and runs the operation.
func (s *Server) dispatch(ctx context.Context, id Identity, op string, body []byte) (any, error) {
	if !wire.Supported(op) {
		return nil, wire.Unsupported(op)
	}
	in, err := wire.DecodeInput(op, body)
	if err != nil {
		return nil, err
	}
	switch in := in.(type) {
	case *wire.GetSecretValueInput:
		return s.getSecretValue(ctx, id, *in)
	case *wire.BatchGetSecretValueInput:
		return s.batchGetSecretValue(ctx, id, *in)
	case *wire.DescribeSecretInput:
		return s.describeSecret(ctx, id, *in)
	case *wire.GetResourcePolicyInput:
		return s.getResourcePolicy(ctx, id, *in)
	case *wire.ListSecretsInput:
		return s.listSecrets(ctx, id, *in)
	case *wire.ListSecretVersionIDsInput:
		return s.listSecretVersionIDs(ctx, id, *in)
	case *wire.CreateSecretInput:
		return s.createSecret(ctx, id, *in)
	case *wire.PutSecretValueInput:
		return s.putSecretValue(ctx, id, *in)
	case *wire.UpdateSecretInput:
		return s.updateSecret(ctx, id, *in)
	case *wire.UpdateSecretVersionStageInput:
		return s.updateSecretVersionStage(ctx, id, *in)
	case *wire.DeleteSecretInput:
		return s.deleteSecret(ctx, id, *in)
	case *wire.RestoreSecretInput:
		return s.restoreSecret(ctx, id, *in)
	case *wire.TagResourceInput:
		return s.tagResource(ctx, id, *in)
	case *wire.UntagResourceInput:
		return s.untagResource(ctx, id, *in)
	case *wire.RotateSecretInput:
		return s.rotateSecret(ctx, id, *in)
	case *wire.CancelRotateSecretInput:
		return s.cancelRotateSecret(ctx, id, *in)
	case *wire.GetRandomPasswordInput:
		return getRandomPassword(*in)
	}
	return nil, wire.Unsupported(op)
}

// pageKey authenticates pagination tokens; derived from the session key, so a token from one
// replica pages on another.
func (s *Server) pageKey() []byte {
	m := hmac.New(sha256.New, s.Certs.SessionKey())
	m.Write([]byte("kube-secrets-manager pagination tokens"))
	return m.Sum(nil)
}

func (s *Server) wallClock() time.Time {
	if s.WallClock != nil {
		return s.WallClock()
	}
	return time.Now()
}

// statusRecorder remembers the status code written, for the request metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
