package rotation

// The rotation contract, shared by the operator (which builds the pod and reads its outcome) and
// the pods (the built-in `rotate` command, and custom images, which honour the same rules; see the
// README, "The rotation contract").

// MaterialDir is where rotation pods mount the material.
const MaterialDir = "/var/run/kube-secrets-manager/rotation"

// EnvJobUID holds the pod's Job UID; a pod whose JOB_UID differs from request.json's jobUid must
// exit without acting.
const EnvJobUID = "JOB_UID"

// Exit codes of a rotation pod.
const (
	ExitOK          = 0 // the pending value is in effect and tested: the operator runs finishSecret
	ExitStepFailed  = 1 // a step failed; the Job retries, and later attempts reuse the pending version
	ExitBadMaterial = 2 // the material is missing or malformed
	ExitWrongJob    = 3 // the material belongs to another Job (a concurrent rotation): this one stands down
)
