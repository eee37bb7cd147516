// Package wire is the AWS Secrets Manager wire format (AWS JSON 1.1) of the AWS-compatible API:
// the operations' input and output shapes with AWS's member names, decoding with AWS's
// serialization and validation errors, error and success answers, secret names and SecretIds,
// and ListSecrets' filters, sorting and pagination. It holds no server, no Kubernetes and no
// storage: the API's handlers use it on both sides of the secret store.
//
// Requests: ParseTarget(X-Amz-Target) names the operation (UnknownOperationException
// otherwise); Decode[T] (or DecodeInput) parses and validates its body in AWS's order — JSON
// (SerializationException), the model's shape constraints (ValidationException, "N validation
// errors detected: ..."), the name check of SecretId and Name, then the service checks AWS makes
// before it looks the secret up (InvalidParameterException / InvalidRequestException). Checks
// that AWS makes after the lookup are methods the handler calls then
// (RotateSecretInput.CheckRotation).
//
// Answers: WriteJSON for a success, WriteError for a failure (HTTP 400, 500 for
// InternalServiceError, body {"__type": ..., "Message"|"message": ...} as AWS sends it).
//
// Nothing here puts a secret value in an error message: SecretString, SecretBinary and
// RotationToken violations read "Value at '<path>' ...", type errors never quote the body, and
// the shapes carrying a value print it as *** through fmt.
package wire
