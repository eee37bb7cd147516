// Package metricsauth guards the metrics endpoint as the API server guards its own: a bearer token
// the API server accepts (TokenReview) whose user may get the /metrics URL (SubjectAccessReview).
// It does what controller-runtime's metrics filter does without pulling the API server's
// libraries into the operator.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// TTL is how long a decision about one token is reused.
const TTL = 10 * time.Second

// maxDecisions bounds the cache; past it, the cache starts over.
const maxDecisions = 1000

// Reviewer decides whether a bearer token may read the metrics.
type Reviewer struct {
	Client client.Client
	Now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]decision
}

type decision struct {
	allowed bool
	until   time.Time
}

// Allowed reports whether the token authenticates to a user allowed to get path.
func (r *Reviewer) Allowed(ctx context.Context, token, path string) (bool, error) {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	key := sha256.Sum256([]byte(path + "\x00" + token))
	r.mu.Lock()
	if d, ok := r.cache[key]; ok && now.Before(d.until) {
		r.mu.Unlock()
		return d.allowed, nil
	}
	r.mu.Unlock()
	allowed, err := r.review(ctx, token, path)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxDecisions {
		r.cache = map[[sha256.Size]byte]decision{}
	}
	r.cache[key] = decision{allowed: allowed, until: now.Add(TTL)}
	r.mu.Unlock()
	return allowed, nil
}

func (r *Reviewer) review(ctx context.Context, token, path string) (bool, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := r.Client.Create(ctx, tr); err != nil {
		return false, err
	}
	if !tr.Status.Authenticated {
		return false, nil
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
	}}
	if err := r.Client.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// FilterProvider is a metrics-server filter provider: requests without a token get 401, with a
// token not allowed to get the path 403.
func FilterProvider(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient})
	if err != nil {
		return nil, err
	}
	r := &Reviewer{Client: c}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			if !ok || token == "" {
				http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
				return
			}
			ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
			defer cancel()
			allowed, err := r.Allowed(ctx, token, req.URL.Path)
			switch {
			case err != nil:
				log.Info("reviewing a metrics request failed", "error", err.Error())
				http.Error(w, "the request could not be authorized", http.StatusInternalServerError)
			case !allowed:
				http.Error(w, "Forbidden: get on "+req.URL.Path+" is not allowed", http.StatusForbidden)
			default:
				next.ServeHTTP(w, req)
			}
		}), nil
	}, nil
}
