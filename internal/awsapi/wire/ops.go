package wire

import (
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// TargetPrefix starts every X-Amz-Target: "secretsmanager.<Operation>".
const TargetPrefix = "secretsmanager."

// The operations of the Secrets Manager API (all 23 of the model).
const (
	OpBatchGetSecretValue          = "BatchGetSecretValue"
	OpCancelRotateSecret           = "CancelRotateSecret"
	OpCreateSecret                 = "CreateSecret"
	OpDeleteResourcePolicy         = "DeleteResourcePolicy"
	OpDeleteSecret                 = "DeleteSecret"
	OpDescribeSecret               = "DescribeSecret"
	OpGetRandomPassword            = "GetRandomPassword"
	OpGetResourcePolicy            = "GetResourcePolicy"
	OpGetSecretValue               = "GetSecretValue"
	OpListSecretVersionIDs         = "ListSecretVersionIds"
	OpListSecrets                  = "ListSecrets"
	OpPutResourcePolicy            = "PutResourcePolicy"
	OpPutSecretValue               = "PutSecretValue"
	OpRemoveRegionsFromReplication = "RemoveRegionsFromReplication"
	OpReplicateSecretToRegions     = "ReplicateSecretToRegions"
	OpRestoreSecret                = "RestoreSecret"
	OpRotateSecret                 = "RotateSecret"
	OpStopReplicationToReplica     = "StopReplicationToReplica"
	OpTagResource                  = "TagResource"
	OpUntagResource                = "UntagResource"
	OpUpdateSecret                 = "UpdateSecret"
	OpUpdateSecretVersionStage     = "UpdateSecretVersionStage"
	OpValidateResourcePolicy       = "ValidateResourcePolicy"
)

// supported are the operations the API implements; the others of the model are answered with
// Unsupported.
var supported = map[string]bool{
	OpGetSecretValue: true, OpBatchGetSecretValue: true, OpDescribeSecret: true, OpListSecrets: true,
	OpListSecretVersionIDs: true, OpCreateSecret: true, OpPutSecretValue: true, OpUpdateSecret: true,
	OpUpdateSecretVersionStage: true, OpDeleteSecret: true, OpRestoreSecret: true, OpTagResource: true,
	OpUntagResource: true, OpRotateSecret: true, OpCancelRotateSecret: true, OpGetRandomPassword: true,
	OpGetResourcePolicy: true,
}

var modelled = map[string]bool{
	OpDeleteResourcePolicy: true, OpPutResourcePolicy: true, OpValidateResourcePolicy: true,
	OpRemoveRegionsFromReplication: true, OpReplicateSecretToRegions: true, OpStopReplicationToReplica: true,
}

// ParseTarget is the operation an X-Amz-Target header names. A header without the
// "secretsmanager." prefix, or naming no operation of the model (names are case-sensitive), →
// UnknownOperationException, with no message, as AWS answers it.
func ParseTarget(target string) (string, error) {
	op, ok := strings.CutPrefix(target, TargetPrefix)
	if !ok || (!supported[op] && !modelled[op]) {
		return "", &awserr.Error{Code: UnknownOperationException}
	}
	return op, nil
}

// Supported reports whether the API implements an operation.
func Supported(op string) bool { return supported[op] }

// Unsupported is the answer to an operation of the model that the API does not implement (the
// resource-policy operations but GetResourcePolicy, which answers that a secret has none, and the
// replication operations): InvalidRequestException, a type every SDK knows,
// saying so. Access is decided by Kubernetes RBAC, not by resource policies.
func Unsupported(op string) *awserr.Error {
	return &awserr.Error{Code: awserr.InvalidRequest,
		Message: op + " is not supported by this endpoint: access to secrets is governed by Kubernetes RBAC, and secrets are not replicated."}
}
