package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// These are unit tests of the store's rules over a fake client; the envtest suite proves the same
// behaviour against a real API server through the operator.

const (
	v1 = "11111111-1111-1111-1111-111111111111"
	v2 = "22222222-2222-2222-2222-222222222222"
	v3 = "33333333-3333-3333-3333-333333333333"
)

func newSecret(t *testing.T) (*Store, *v1alpha1.ManagedSecret) {
	t.Helper()
	return newGatedSecret(t, nil)
}

// patchGate counts the patches of a store's client and fails the ones fail picks, by their
// number (from 1) since patches was last reset: a crash or a lost answer after some writes.
type patchGate struct {
	patches int
	fail    func(n int) bool
}

// after fails every patch after the first n.
func after(n int) func(int) bool { return func(k int) bool { return k > n } }

// newGatedSecret is newSecret whose client's patches pass through gate (none when nil).
func newGatedSecret(t *testing.T, gate *patchGate) (*Store, *v1alpha1.ManagedSecret) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	if gate != nil {
		b = b.WithInterceptorFuncs(interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				gate.patches++
				if gate.fail != nil && gate.fail(gate.patches) {
					return errors.New("the operator stopped")
				}
				return c.Patch(ctx, obj, patch, opts...)
			},
		})
	}
	c := b.Build()
	ring, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	owner := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "db", UID: types.UID("owner-uid")}}
	return &Store{Client: c, APIReader: c, Keys: keyring.NewProvider(ring, nil), Limit: 65536}, owner
}

func load(t *testing.T, st *Store, owner *v1alpha1.ManagedSecret) *Secret {
	t.Helper()
	s, err := st.Load(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func str(v string) Value { return Value{Bytes: []byte(v)} }

// labelsOf returns the labels by version id, as stored (reloaded from the client, deprecated
// versions included), and checks that exactly the unlabelled ones carry LabelDeprecated.
func labelsOf(t *testing.T, st *Store, owner *v1alpha1.ManagedSecret) map[string]string {
	t.Helper()
	s := load(t, st, owner)
	if err := s.WithDeprecated(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range s.Versions() {
		if marked := v.Labels[v1alpha1.LabelDeprecated] == v1alpha1.DeprecatedValue; marked != (len(v.Spec.Stages) == 0) {
			t.Errorf("version %s with labels %v: deprecated label %v", v.Spec.VersionID, v.Spec.Stages, marked)
		}
	}
	for id, ls := range s.Labels() {
		out[id] = strings.Join(ls, ",")
	}
	return out
}

func mustPut(t *testing.T, s *Secret, token, val string, labels ...string) PutOutput {
	t.Helper()
	out, err := s.Put(context.Background(), PutInput{Token: token, Value: str(val), Stages: labels})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutLabels(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		steps func(t *testing.T, s *Secret)
		want  map[string]string
	}{
		{"the first version gets AWSCURRENT whatever the put names", func(t *testing.T, s *Secret) {
			mustPut(t, s, v1, "a", "AWSPENDING")
		}, map[string]string{v1: "AWSCURRENT,AWSPENDING"}},
		{"a put moves AWSCURRENT and AWSPREVIOUS follows", func(t *testing.T, s *Secret) {
			mustPut(t, s, v1, "a")
			mustPut(t, s, v2, "b")
			mustPut(t, s, v3, "c")
		}, map[string]string{v1: "", v2: "AWSPREVIOUS", v3: "AWSCURRENT"}},
		{"custom labels leave the version that held them", func(t *testing.T, s *Secret) {
			mustPut(t, s, v1, "a")
			mustPut(t, s, v2, "b", "one", "two", "three")
			mustPut(t, s, v3, "c", "one", "two", "four")
		}, map[string]string{v1: "AWSCURRENT", v2: "three", v3: "four,one,two"}},
		{"a new AWSPENDING takes it off the AWSCURRENT version", func(t *testing.T, s *Secret) {
			mustPut(t, s, v1, "a", "AWSCURRENT", "AWSPENDING")
			if _, err := s.CreatePending(ctx, str("b"), ""); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{v1: "AWSCURRENT", "pending": "AWSPENDING"}},
		{"moving AWSCURRENT off a finished rotation drops its AWSPENDING", func(t *testing.T, s *Secret) {
			mustPut(t, s, v1, "a")
			mustPut(t, s, v2, "b", "AWSPENDING")
			if err := s.UpdateStage(ctx, stages.Current, v2, v1); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, v3, "c")
		}, map[string]string{v1: "", v2: "AWSPREVIOUS", v3: "AWSCURRENT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, owner := newSecret(t)
			tt.steps(t, load(t, st, owner))
			got := labelsOf(t, st, owner)
			if len(got) != len(tt.want) {
				t.Fatalf("labels %v, want %v", got, tt.want)
			}
			for id, want := range tt.want {
				if id == "pending" {
					found := false
					for gid, ls := range got {
						found = found || (gid != v1 && ls == want)
					}
					if !found {
						t.Fatalf("labels %v: no new version with %s", got, want)
					}
					continue
				}
				if got[id] != want {
					t.Fatalf("labels %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestPutIdempotency(t *testing.T) {
	st, owner := newSecret(t)
	s := load(t, st, owner)
	mustPut(t, s, v1, "a")
	again := mustPut(t, s, v1, "a")
	if again.Created || again.VersionID != v1 || strings.Join(again.Stages, ",") != "AWSCURRENT" {
		t.Fatalf("the same token and value: %+v", again)
	}
	_, err := s.Put(context.Background(), PutInput{Token: v1, Value: str("other")})
	if !awserr.Is(err, awserr.ResourceExists) || !strings.Contains(err.Error(), "You can't use ClientRequestToken "+v1) {
		t.Fatalf("the same token with another value: %v", err)
	}
	_, err = s.Put(context.Background(), PutInput{Token: v1, Value: Value{Bytes: []byte("a"), Binary: true}})
	if !awserr.Is(err, awserr.ResourceExists) {
		t.Fatalf("the same token and bytes as the other kind: %v", err)
	}
	for _, tt := range []struct {
		in   PutInput
		code string
	}{
		{PutInput{Token: "", Value: str("x")}, awserr.InvalidRequest},
		{PutInput{Token: "short", Value: str("x")}, awserr.InvalidParameter},
		{PutInput{Token: v2}, awserr.InvalidRequest},
		{PutInput{Token: v2, Value: str(strings.Repeat("x", 65537))}, awserr.InvalidParameter},
	} {
		if _, err := s.Put(context.Background(), tt.in); !awserr.Is(err, tt.code) {
			t.Errorf("%+v: %v, want %s", tt.in.Token, err, tt.code)
		}
	}
	if n := len(load(t, st, owner).Versions()); n != 1 {
		t.Fatalf("refused puts wrote: %d versions", n)
	}
}

func TestGetSelectsAndReturnsTheKind(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	s := load(t, st, owner)
	mustPut(t, s, v1, "text")
	if _, err := s.Put(ctx, PutInput{Token: v2, Value: Value{Bytes: []byte{0, 1, 2}, Binary: true}, Stages: []string{"BIN"}}); err != nil {
		t.Fatal(err)
	}
	s = load(t, st, owner)
	tests := []struct {
		id, stage string
		want      string
		binary    bool
		code      string
	}{
		{"", "", "text", false, ""},
		{v2, "", "\x00\x01\x02", true, ""},
		{"", "BIN", "\x00\x01\x02", true, ""},
		{v1, "AWSCURRENT", "text", false, ""},
		{v1, "BIN", "", false, awserr.InvalidRequest},
		{v3, "", "", false, awserr.ResourceNotFound},
		{"", "AWSPENDING", "", false, awserr.ResourceNotFound},
	}
	for _, tt := range tests {
		val, _, err := s.Get(ctx, tt.id, tt.stage)
		if tt.code != "" {
			if !awserr.Is(err, tt.code) {
				t.Errorf("get %q %q: %v, want %s", tt.id, tt.stage, err, tt.code)
			}
			continue
		}
		if err != nil || string(val.Bytes) != tt.want || val.Binary != tt.binary {
			t.Errorf("get %q %q = %q binary=%v, %v", tt.id, tt.stage, val.Bytes, val.Binary, err)
		}
	}
}

// The value's kind is bound into the authentication data: a payload relabelled as the other kind
// does not open.
func TestValueKindIsBound(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	mustPut(t, load(t, st, owner), v1, "text")
	v := &v1alpha1.SecretVersion{}
	list := &v1alpha1.SecretVersionList{}
	if err := st.Client.List(ctx, list); err != nil || len(list.Items) != 1 {
		t.Fatal(err)
	}
	*v = list.Items[0]
	v.Spec.Payload.ValueType = v1alpha1.ValueTypeBinary
	if err := st.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, _, err := load(t, st, owner).Get(ctx, v1, ""); !awserr.Is(err, awserr.DecryptionFailure) {
		t.Fatalf("a String value read as Binary: %v", err)
	}
}

func TestUpdateStageChecks(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	s := load(t, st, owner)
	mustPut(t, s, v1, "a")
	mustPut(t, s, v2, "b", "AWSPENDING")
	tests := []struct {
		label, moveTo, removeFrom string
		message                   string
	}{
		{"AWSCURRENT", v2, "", "Staging label AWSCURRENT is currently attached to version " + v1 + ", so you must explicitly reference that version in RemoveFromVersionId."},
		{"AWSCURRENT", "", v1, "AWSCURRENT"},
		{"AWSPENDING", v1, v3, "Not a valid version: " + v3},
		{"AWSPENDING", v3, "", "Not a valid version: " + v3},
		{"AWSPREVIOUS", v2, v1, "Version stage AWSPREVIOUS not found in version " + v1},
		{"X", "", "", "name a version"},
	}
	for _, tt := range tests {
		err := s.UpdateStage(ctx, tt.label, tt.moveTo, tt.removeFrom)
		if !awserr.Is(err, awserr.InvalidParameter) || !strings.Contains(err.Error(), tt.message) {
			t.Errorf("%+v: %v", tt, err)
		}
	}
	if err := s.UpdateStage(ctx, stages.Current, v2, v1); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[v1] != "AWSPREVIOUS" || got[v2] != "AWSCURRENT,AWSPENDING" {
		t.Fatalf("after the move: %v", got)
	}
	s = load(t, st, owner)
	if to, err := s.Rollback(ctx); err != nil || to != v1 {
		t.Fatal(to, err)
	}
	if got := labelsOf(t, st, owner); got[v1] != "AWSCURRENT" || got[v2] != "AWSPENDING,AWSPREVIOUS" {
		t.Fatalf("after the rollback: %v", got)
	}
}

func TestLabelQuota(t *testing.T) {
	st, owner := newSecret(t)
	s := load(t, st, owner)
	var labels []string
	for i := 0; i < 19; i++ {
		labels = append(labels, "L"+strings.Repeat("x", i))
	}
	mustPut(t, s, v1, "a", append(labels, "AWSCURRENT")...)
	if _, err := s.Put(context.Background(), PutInput{Token: v2, Value: str("b"), Stages: []string{"one-more"}}); !awserr.Is(err, awserr.LimitExceeded) {
		t.Fatalf("the 21st label: %v", err)
	}
}

func TestFinishAndInterruptedWrites(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	s := load(t, st, owner)
	mustPut(t, s, v1, "a")
	pending, err := s.CreatePending(ctx, str("b"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[pending] != "AWSPENDING" || got[v1] != "AWSCURRENT" {
		t.Fatalf("after createSecret: %v", got)
	}
	// A finish interrupted after its first write: the pending version holds AWSCURRENT too.
	v := load(t, st, owner).Version(pending)
	orig := v.DeepCopy()
	v.Spec.Stages = []string{stages.Current, stages.Pending}
	if err := st.Client.Patch(ctx, v, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	if err := load(t, st, owner).CompleteInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[pending] != "AWSCURRENT" || got[v1] != "AWSPREVIOUS" {
		t.Fatalf("after completing the interrupted finish: %v", got)
	}
}

// A finish takes two label writes: the pending version keeps its numbered mark instead of a third
// write that only removes it. A later finish interrupted after its first write leaves two marked
// AWSCURRENT holders; the newer mark tells which one was gaining, and the reconcile after an idle
// one writes nothing.
func TestFinishKeepsItsMarkAndANewerMarkWins(t *testing.T) {
	ctx := context.Background()
	gate := &patchGate{}
	st, owner := newGatedSecret(t, gate)
	mustPut(t, load(t, st, owner), v1, "a")
	first, err := load(t, st, owner).CreatePending(ctx, str("b"), "")
	if err != nil {
		t.Fatal(err)
	}
	gate.patches = 0
	if err := load(t, st, owner).Finish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if gate.patches != 2 {
		t.Fatalf("the first finish took %d label writes, want 2", gate.patches)
	}
	if got := labelsOf(t, st, owner); got[first] != "AWSCURRENT" || got[v1] != "AWSPREVIOUS" {
		t.Fatalf("after the finish: %v", got)
	}
	gate.patches = 0
	if err := load(t, st, owner).CompleteInterrupted(ctx); err != nil || gate.patches != 0 {
		t.Fatalf("an idle reconcile after the finish: %d writes, %v", gate.patches, err)
	}

	second, err := load(t, st, owner).CreatePending(ctx, str("c"), "")
	if err != nil {
		t.Fatal(err)
	}
	gate.patches, gate.fail = 0, after(1)
	if err := load(t, st, owner).Finish(ctx, second); err == nil {
		t.Fatal("the interrupted finish succeeded")
	}
	gate.fail = nil
	s := load(t, st, owner)
	if a, b := s.Version(first).Annotations[AnnotationTakingCurrent], s.Version(second).Annotations[AnnotationTakingCurrent]; a == "" || b == "" {
		t.Fatalf("want two marked AWSCURRENT holders after the crash, got marks %q and %q", a, b)
	}
	if err := s.CompleteInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[second] != "AWSCURRENT" || got[first] != "AWSPREVIOUS" || got[v1] != "" {
		t.Fatalf("after completing the interrupted finish: %v", got)
	}
	if val, v, err := load(t, st, owner).Get(ctx, "", stages.Current); err != nil || v.Spec.VersionID != second || string(val.Bytes) != "c" {
		t.Fatalf("AWSCURRENT reads %v, %v", v, err)
	}
}

// A label write that fails leaves the cached version as the API server has it: a finish later in
// the same reconcile still marks its version above the mark an earlier finish left, and a crash
// after the finish's first write is completed towards the new version (found in review: the
// failed write's change stayed in the cache, the new mark came out lower, and Recover moved
// AWSCURRENT back to the old version after the Job had changed the credential).
func TestAFailedLabelWriteDoesNotLowerTheNextMark(t *testing.T) {
	ctx := context.Background()
	gate := &patchGate{}
	st, owner := newGatedSecret(t, gate)
	mustPut(t, load(t, st, owner), v1, "a")
	var current string
	for _, val := range []string{"b", "c"} {
		p, err := load(t, st, owner).CreatePending(ctx, str(val), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := load(t, st, owner).Finish(ctx, p); err != nil {
			t.Fatal(err)
		}
		current = p
	}
	next, err := load(t, st, owner).CreatePending(ctx, str("d"), "")
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, st, owner)
	gate.patches, gate.fail = 0, func(n int) bool { return n == 1 || n == 3 }
	if err := s.UpdateStage(ctx, "custom", current, ""); err == nil { // patch 1 fails
		t.Fatal("the failed request succeeded")
	}
	if err := s.Finish(ctx, next); err == nil { // patch 2 marks next, patch 3 fails
		t.Fatal("the interrupted finish succeeded")
	}
	gate.fail = nil
	if err := load(t, st, owner).CompleteInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[next] != "AWSCURRENT" || got[current] != "AWSPREVIOUS" {
		t.Fatalf("after completing the interrupted finish: %v (want %s AWSCURRENT)", got, next)
	}
}

func TestCreateFirstIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	if created, err := load(t, st, owner).CreateFirst(ctx, str("a")); err != nil || !created {
		t.Fatal(created, err)
	}
	if created, err := load(t, st, owner).CreateFirst(ctx, str("b")); err != nil || created {
		t.Fatalf("a second first version: %v %v", created, err)
	}
	val, v, err := load(t, st, owner).Get(ctx, "", "")
	if err != nil || string(val.Bytes) != "a" || v.Spec.VersionID != string(owner.UID) {
		t.Fatalf("%q %v", val.Bytes, err)
	}
}

// A move onto a deprecated version that a crash interrupts after its first write: the target lost
// the deprecated label in that write (with the intent), so a reload that leaves deprecated
// versions out still finds it, and CompleteInterrupted finishes the move.
func TestMoveOntoDeprecatedSurvivesACrash(t *testing.T) {
	ctx := context.Background()
	gate := &patchGate{}
	st, owner := newGatedSecret(t, gate)
	s := load(t, st, owner)
	mustPut(t, s, v1, "a")
	mustPut(t, s, v2, "b")
	mustPut(t, s, v3, "c")
	s = load(t, st, owner)
	if s.Version(v1) != nil {
		t.Fatal("the deprecated version was loaded with the labelled ones")
	}
	gate.patches, gate.fail = 0, after(1)
	if err := s.UpdateStage(ctx, stages.Current, v1, v3); err == nil {
		t.Fatal("the interrupted move succeeded")
	}
	gate.fail = nil
	s = load(t, st, owner)
	if v := s.Version(v1); v == nil || v.Annotations[AnnotationIntendedStages] == "" {
		t.Fatalf("the target of the interrupted move is not loaded with its intent: %+v", v)
	}
	if err := s.CompleteInterrupted(ctx); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, st, owner); got[v1] != "AWSCURRENT" || got[v3] != "AWSPREVIOUS" || got[v2] != "" {
		t.Fatalf("after completing the move: %v", got)
	}
}

// A put with a new token reads nothing first (the create finds a version the cache lacks); a
// token naming a version the cache lacks (deprecated) is still answered as AWS answers it.
func TestPutWithANewTokenReadsNothing(t *testing.T) {
	ctx := context.Background()
	st, owner := newSecret(t)
	gets := 0
	st.APIReader = interceptor.NewClient(st.Client.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return c.Get(ctx, key, obj, opts...)
		},
	})
	if _, err := load(t, st, owner).Put(ctx, PutInput{Token: v1, Value: str("a")}); err != nil {
		t.Fatal(err)
	}
	if gets != 0 {
		t.Fatalf("a put with a new token read %d objects", gets)
	}
	// The same token again through a Secret whose versions are not loaded (as a cache that lacks
	// the version): the collision is sorted out with one read.
	s := load(t, st, owner)
	s.versions = nil
	out, err := s.Put(ctx, PutInput{Token: v1, Value: str("a")})
	if err != nil || out.Created || out.VersionID != v1 {
		t.Fatalf("the repeated put: %+v, %v", out, err)
	}
	s.versions = nil
	if _, err := s.Put(ctx, PutInput{Token: v1, Value: str("b")}); !awserr.Is(err, awserr.ResourceExists) {
		t.Fatalf("the token with another value: %v", err)
	}
}
