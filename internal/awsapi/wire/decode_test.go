package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const (
	token36  = "3f0e4a8e-6b1a-4f67-9c1c-1e2d3c4b5a69"
	versionA = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"
)

type decodeCase struct {
	name string
	op   string
	body string
	code string // "" for success
	msg  string // exact message (checked when code != "")
}

func vmsg(parts ...string) string {
	n := len(parts)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d validation error%s detected: %s", n, plural, strings.Join(parts, "; "))
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := DecodeInput(c.op, []byte(c.body))
			if c.code == "" {
				if err != nil {
					t.Fatalf("Decode(%s): %v", c.body, err)
				}
				if v == nil {
					t.Fatal("no input returned")
				}
				return
			}
			var e *awserr.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%.200s) = %v, want %s", c.body, err, c.code)
			}
			if e.Code != c.code || e.Message != c.msg {
				t.Fatalf("Decode(%.200s):\n got %s: %q\nwant %s: %q", c.body, e.Code, e.Message, c.code, c.msg)
			}
			if v != nil {
				t.Fatalf("input returned with an error: %#v", v)
			}
		})
	}
}

func TestDecodeSerialization(t *testing.T) {
	S := SerializationException
	runDecodeCases(t, []decodeCase{
		{"empty body", OpGetSecretValue, ``, S, ""},
		{"blank body", OpGetSecretValue, "  \n", S, ""},
		{"malformed", OpGetSecretValue, `{"SecretId":`, S, ""},
		{"not JSON", OpGetSecretValue, `SecretId=x`, S, ""},
		{"trailing data", OpGetSecretValue, `{"SecretId":"a"} {}`, S, ""},
		{"array body", OpGetSecretValue, `[{"SecretId":"a"}]`, S, ""},
		{"string body", OpGetSecretValue, `"a"`, S, ""},
		{"string gets integer", OpGetSecretValue, `{"SecretId":5}`, S, "NUMBER_VALUE cannot be converted to String"},
		{"string gets decimal", OpGetSecretValue, `{"SecretId":5.5}`, S, "DECIMAL_VALUE cannot be converted to String"},
		{"string gets true", OpGetSecretValue, `{"SecretId":true}`, S, "TRUE_VALUE cannot be converted to String"},
		{"string gets false", OpGetSecretValue, `{"SecretId":false}`, S, "FALSE_VALUE cannot be converted to String"},
		{"string gets object", OpGetSecretValue, `{"SecretId":{}}`, S, "Start of structure or map found where not expected"},
		{"string gets list", OpGetSecretValue, `{"SecretId":["a"]}`, S, "Unrecognized collection type class java.lang.String"},
		{"integer gets string", OpListSecrets, `{"MaxResults":"5"}`, S, "STRING_VALUE cannot be converted to Integer"},
		{"integer gets bool", OpListSecrets, `{"MaxResults":true}`, S, "TRUE_VALUE cannot be converted to Integer"},
		{"integer gets list", OpListSecrets, `{"MaxResults":[1]}`, S, "Unrecognized collection type class java.lang.Integer"},
		{"integer gets object", OpListSecrets, `{"MaxResults":{}}`, S, "Start of structure or map found where not expected"},
		{"integer overflow", OpListSecrets, `{"MaxResults":2147483648}`, S, "NUMBER_VALUE cannot be converted to Integer"},
		{"integer decimal overflow", OpListSecrets, `{"MaxResults":1e10}`, S, "DECIMAL_VALUE cannot be converted to Integer"},
		{"long gets string", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":"7"}`, S, "STRING_VALUE cannot be converted to Long"},
		{"long overflow", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":9223372036854775808}`, S, "NUMBER_VALUE cannot be converted to Long"},
		{"bool gets number", OpListSecrets, `{"IncludePlannedDeletion":1}`, S, "NUMBER_VALUE cannot be converted to Boolean"},
		{"bool gets other string", OpListSecrets, `{"IncludePlannedDeletion":"maybe"}`, S, "Unexpected token received from parser"},
		{"bool gets list", OpListSecrets, `{"IncludePlannedDeletion":[]}`, S, "Unrecognized collection type class java.lang.Boolean"},
		{"bool gets object", OpListSecrets, `{"IncludePlannedDeletion":{}}`, S, "Start of structure or map found where not expected"},
		{"list gets string", OpListSecrets, `{"Filters":"name"}`, S, "Unexpected field type"},
		{"list gets object", OpListSecrets, `{"Filters":{"Key":"name"}}`, S, "Start of structure or map found where not expected"},
		{"struct gets scalar", OpListSecrets, `{"Filters":[1]}`, S, "Unexpected field type"},
		{"struct gets list", OpListSecrets, `{"Filters":[["name"]]}`, S, "Start of list found where not expected"},
		{"nested struct gets string", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + token36 + `","RotationRules":"x"}`, S, "Unexpected field type"},
		{"list entry gets number", OpUntagResource, `{"SecretId":"a","TagKeys":[1]}`, S, "NUMBER_VALUE cannot be converted to String"},
		{"blob gets number", OpCreateSecret, `{"Name":"a","SecretBinary":1}`, S, "only base-64-encoded strings are convertible to bytes"},
		{"blob gets bool", OpCreateSecret, `{"Name":"a","SecretBinary":true}`, S, "only base-64-encoded strings are convertible to bytes"},
		{"blob gets list", OpCreateSecret, `{"Name":"a","SecretBinary":[1]}`, S, "Unrecognized collection type class java.nio.ByteBuffer"},
		{"blob gets object", OpCreateSecret, `{"Name":"a","SecretBinary":{}}`, S, "Start of structure or map found where not expected"},
		{"blob bad length", OpCreateSecret, `{"Name":"a","SecretBinary":"abc"}`, S, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
		{"blob bad character", OpCreateSecret, `{"Name":"a","SecretBinary":"ab!="}`, S, "Invalid last non-pad Base64 character dectected"},
		{"blob url-safe alphabet", OpCreateSecret, `{"Name":"a","SecretBinary":"_-8="}`, S, "Invalid last non-pad Base64 character dectected"},
	})
}

func TestDecodeAccepts(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{"unknown members ignored", OpGetSecretValue, `{"SecretId":"a","Foo":{"x":[1,{}]},"secretid":5}`, "", ""},
		{"null member is absent", OpGetSecretValue, `{"SecretId":"a","VersionId":null,"VersionStage":null}`, "", ""},
		{"null body is {}", OpListSecrets, `null`, "", ""},
		{"empty object", OpListSecrets, `{}`, "", ""},
		{"bool strings", OpListSecrets, `{"IncludePlannedDeletion":"YES"}`, "", ""},
		{"ARN with any characters", OpDescribeSecret, `{"SecretId":"arn:aws:secretsmanager:us-east-1:1:secret:a b#c"}`, "", ""},
		{"every name character", OpCreateSecret, `{"Name":"AZaz09/_+=.@-"}`, "", ""},
		{"create without value needs no token", OpCreateSecret, `{"Name":"a"}`, "", ""},
		{"update without value needs no token", OpUpdateSecret, `{"SecretId":"a","Description":""}`, "", ""},
		{"recovery window 7", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":7}`, "", ""},
		{"recovery window 30", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":30}`, "", ""},
		{"recovery window, force false", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":10,"ForceDeleteWithoutRecovery":false}`, "", ""},
		{"force alone", OpDeleteSecret, `{"SecretId":"a","ForceDeleteWithoutRecovery":true}`, "", ""},
		{"empty tag value", OpTagResource, `{"SecretId":"a","Tags":[{"Key":"k","Value":""}]}`, "", ""},
		{"tag without value", OpTagResource, `{"SecretId":"a","Tags":[{"Key":"k"}]}`, "", ""},
		{"empty tag list", OpTagResource, `{"SecretId":"a","Tags":[]}`, "", ""},
		{"empty filter value", OpListSecrets, `{"Filters":[{"Key":"name","Values":[""]}]}`, "", ""},
		{"negated filter value", OpListSecrets, `{"Filters":[{"Key":"all","Values":["!a b:c_d@e/f+g=h.i-j!"]}]}`, "", ""},
		{"rotate with token and rules", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + token36 + `","RotationRules":{"ScheduleExpression":"cron(0 16 ? * MON-FRI *)","Duration":"3h"}}`, "", ""},
		{"rotate days out of range passes Decode", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + token36 + `","RotationRules":{"AutomaticallyAfterDays":0}}`, "", ""},
		{"password defaults", OpGetRandomPassword, `{}`, "", ""},
		{"password 4096", OpGetRandomPassword, `{"PasswordLength":4096}`, "", ""},
		{"batch list", OpBatchGetSecretValue, `{"SecretIdList":["a","arn:aws:secretsmanager:us-east-1:1:secret:b"]}`, "", ""},
		{"batch filters with max", OpBatchGetSecretValue, `{"Filters":[{"Key":"name","Values":["a"]}],"MaxResults":20}`, "", ""},
		{"validate policy without secret", OpValidateResourcePolicy, `{"ResourcePolicy":"{}"}`, "", ""},
	})
}

func TestDecodeValidation(t *testing.T) {
	V, IPE, IRE := ValidationException, awserr.InvalidParameter, awserr.InvalidRequest
	long := func(n int) string { return strings.Repeat("a", n) }
	filterEnum := "Member must satisfy enum value set: [description, name, tag-key, tag-value, primary-region, owning-service, all]"
	filterPattern := `Member must satisfy regular expression pattern: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`
	tok := `"ClientRequestToken":"` + token36 + `"`
	runDecodeCases(t, []decodeCase{
		// Required members and lengths.
		{"secretId missing", OpGetSecretValue, `{}`, V, vmsg("Value null at 'secretId' failed to satisfy constraint: Member must not be null")},
		{"secretId null", OpDescribeSecret, `{"SecretId":null}`, V, vmsg("Value null at 'secretId' failed to satisfy constraint: Member must not be null")},
		{"secretId empty", OpGetSecretValue, `{"SecretId":""}`, V, vmsg("Value '' at 'secretId' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"secretId 2049", OpGetSecretValue, `{"SecretId":"` + long(2049) + `"}`, V, vmsg("Value '" + long(2049) + "' at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048")},
		{"secretId 2048 ok", OpGetSecretValue, `{"SecretId":"` + long(2048) + `"}`, "", ""},
		{"versionId short", OpGetSecretValue, `{"SecretId":"a","VersionId":"abc"}`, V, vmsg("Value 'abc' at 'versionId' failed to satisfy constraint: Member must have length greater than or equal to 32")},
		{"versionId long", OpGetSecretValue, `{"SecretId":"a","VersionId":"` + long(65) + `"}`, V, vmsg("Value '" + long(65) + "' at 'versionId' failed to satisfy constraint: Member must have length less than or equal to 64")},
		{"two errors in member order", OpGetSecretValue, `{"VersionStage":"","VersionId":"abc"}`, V, vmsg(
			"Value null at 'secretId' failed to satisfy constraint: Member must not be null",
			"Value 'abc' at 'versionId' failed to satisfy constraint: Member must have length greater than or equal to 32",
			"Value '' at 'versionStage' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"versionStage required", OpUpdateSecretVersionStage, `{"SecretId":"a"}`, V, vmsg("Value null at 'versionStage' failed to satisfy constraint: Member must not be null")},
		{"moveTo short", OpUpdateSecretVersionStage, `{"SecretId":"a","VersionStage":"AWSCURRENT","MoveToVersionId":"v1"}`, V, vmsg("Value 'v1' at 'moveToVersionId' failed to satisfy constraint: Member must have length greater than or equal to 32")},
		{"description 2049", OpCreateSecret, `{"Name":"a","Description":"` + long(2049) + `"}`, V, vmsg("Value '" + long(2049) + "' at 'description' failed to satisfy constraint: Member must have length less than or equal to 2048")},
		{"description counts UTF-16 units", OpCreateSecret, `{"Name":"a","Description":"` + strings.Repeat("😀", 1025) + `"}`, V, vmsg("Value '" + strings.Repeat("😀", 1025) + "' at 'description' failed to satisfy constraint: Member must have length less than or equal to 2048")},
		{"description 1024 emoji ok", OpCreateSecret, `{"Name":"a","Description":"` + strings.Repeat("😀", 1024) + `"}`, "", ""},
		{"name empty", OpCreateSecret, `{"Name":""}`, V, vmsg("Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"name 513", OpCreateSecret, `{"Name":"` + long(513) + `"}`, V, vmsg("Value '" + long(513) + "' at 'name' failed to satisfy constraint: Member must have length less than or equal to 512")},
		{"name 512 ok", OpCreateSecret, `{"Name":"` + long(512) + `"}`, "", ""},
		{"kmsKeyId 2049", OpUpdateSecret, `{"SecretId":"a","KmsKeyId":"` + long(2049) + `"}`, V, vmsg("Value '" + long(2049) + "' at 'kmsKeyId' failed to satisfy constraint: Member must have length less than or equal to 2048")},
		{"type 257", OpUpdateSecret, `{"SecretId":"a","Type":"` + long(257) + `"}`, V, vmsg("Value '" + long(257) + "' at 'type' failed to satisfy constraint: Member must have length less than or equal to 256")},
		{"token short", OpCreateSecret, `{"Name":"a","ClientRequestToken":"abc","SecretString":"s"}`, V, vmsg("Value 'abc' at 'clientRequestToken' failed to satisfy constraint: Member must have length greater than or equal to 32")},
		{"token long", OpPutSecretValue, `{"SecretId":"a","ClientRequestToken":"` + long(65) + `","SecretString":"s"}`, V, vmsg("Value '" + long(65) + "' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 64")},

		// Secret values are never echoed.
		{"secretString empty", OpCreateSecret, `{"Name":"a",` + tok + `,"SecretString":""}`, V, vmsg("Value at 'secretString' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"secretString too long", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"` + long(65537) + `"}`, V, vmsg("Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536")},
		{"secretString counts bytes", OpUpdateSecret, `{"SecretId":"a",` + tok + `,"SecretString":"` + strings.Repeat("é", 32769) + `"}`, V, vmsg("Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536")},
		{"secretString 65536 bytes ok", OpUpdateSecret, `{"SecretId":"a",` + tok + `,"SecretString":"` + strings.Repeat("é", 32768) + `"}`, "", ""},
		{"secretBinary empty", OpCreateSecret, `{"Name":"a",` + tok + `,"SecretBinary":""}`, V, vmsg("Value at 'secretBinary' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"secretBinary too long", OpCreateSecret, `{"Name":"a",` + tok + `,"SecretBinary":"` + base64.StdEncoding.EncodeToString(make([]byte, 65537)) + `"}`, V, vmsg("Value at 'secretBinary' failed to satisfy constraint: Member must have length less than or equal to 65536")},
		{"rotationToken short and bad", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","RotationToken":"x#"}`, V, vmsg(
			"Value at 'rotationToken' failed to satisfy constraint: Member must have length greater than or equal to 36",
			`Value at 'rotationToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9\-]+$`)},

		// Lists.
		{"versionStages empty", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","VersionStages":[]}`, V, vmsg("Value '[]' at 'versionStages' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"versionStages 21", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","VersionStages":["` + strings.Repeat(`s","`, 20) + `s"]}`, V, vmsg("Value '[" + strings.Repeat("s, ", 20) + "s]' at 'versionStages' failed to satisfy constraint: Member must have length less than or equal to 20")},
		{"versionStages entry empty", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","VersionStages":["AWSCURRENT",""]}`, V, vmsg("Value '' at 'versionStages.2.member' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"versionStages entry null", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","VersionStages":[null]}`, V, vmsg("Value null at 'versionStages.1.member' failed to satisfy constraint: Member must not be null")},
		{"tagKeys missing", OpUntagResource, `{"SecretId":"a"}`, V, vmsg("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")},
		{"tagKeys entry long", OpUntagResource, `{"SecretId":"a","TagKeys":["ok","` + long(129) + `"]}`, V, vmsg("Value '" + long(129) + "' at 'tagKeys.2.member' failed to satisfy constraint: Member must have length less than or equal to 128")},
		{"tags missing", OpTagResource, `{"SecretId":"a"}`, V, vmsg("Value null at 'tags' failed to satisfy constraint: Member must not be null")},
		{"tag key missing", OpTagResource, `{"SecretId":"a","Tags":[{"Key":"k","Value":"v"},{"Value":"v"}]}`, V, vmsg("Value null at 'tags.2.member.key' failed to satisfy constraint: Member must not be null")},
		{"tag key and value long", OpCreateSecret, `{"Name":"a","Tags":[{"Key":"` + long(129) + `","Value":"` + long(257) + `"}]}`, V, vmsg(
			"Value '"+long(129)+"' at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128",
			"Value '"+long(257)+"' at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256")},
		{"replica regions empty", OpCreateSecret, `{"Name":"a","AddReplicaRegions":[]}`, V, vmsg("Value '[]' at 'addReplicaRegions' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"replica region pattern", OpCreateSecret, `{"Name":"a","AddReplicaRegions":[{"Region":"US-EAST-1"}]}`, V, vmsg(`Value 'US-EAST-1' at 'addReplicaRegions.1.member.region' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-)+\d+$`)},
		{"secretIdList empty", OpBatchGetSecretValue, `{"SecretIdList":[]}`, V, vmsg("Value '[]' at 'secretIdList' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"secretIdList 21", OpBatchGetSecretValue, `{"SecretIdList":["` + strings.Repeat(`a","`, 20) + `a"]}`, V, vmsg("Value '[" + strings.Repeat("a, ", 20) + "a]' at 'secretIdList' failed to satisfy constraint: Member must have length less than or equal to 20")},
		{"secretIdList entry empty", OpBatchGetSecretValue, `{"SecretIdList":[""]}`, V, vmsg("Value '' at 'secretIdList.1.member' failed to satisfy constraint: Member must have length greater than or equal to 1")},

		// Ranges and enums.
		{"maxResults 0", OpListSecrets, `{"MaxResults":0}`, V, vmsg("Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1")},
		{"maxResults 101", OpListSecrets, `{"MaxResults":101}`, V, vmsg("Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100")},
		{"maxResults decimal floors", OpListSecrets, `{"MaxResults":100.9}`, "", ""},
		{"maxResults decimal floors below", OpListSecrets, `{"MaxResults":0.5}`, V, vmsg("Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1")},
		{"versions maxResults 101", OpListSecretVersionIDs, `{"SecretId":"a","MaxResults":101}`, V, vmsg("Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100")},
		{"nextToken empty", OpListSecrets, `{"NextToken":""}`, V, vmsg("Value '' at 'nextToken' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"sortBy", OpListSecrets, `{"SortBy":"size"}`, V, vmsg("Value 'size' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]")},
		{"sortOrder is case-sensitive", OpListSecrets, `{"SortOrder":"ASC"}`, V, vmsg("Value 'ASC' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]")},
		{"batch maxResults 21", OpBatchGetSecretValue, `{"Filters":[{"Key":"name","Values":["a"]}],"MaxResults":21}`, V, vmsg("Value '21' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 20")},
		{"password length 0", OpGetRandomPassword, `{"PasswordLength":0}`, V, vmsg("Value '0' at 'passwordLength' failed to satisfy constraint: Member must have value greater than or equal to 1")},
		{"password length 4097", OpGetRandomPassword, `{"PasswordLength":4097}`, V, vmsg("Value '4097' at 'passwordLength' failed to satisfy constraint: Member must have value less than or equal to 4096")},
		{"exclude 4097", OpGetRandomPassword, `{"ExcludeCharacters":"` + long(4097) + `"}`, V, vmsg("Value '" + long(4097) + "' at 'excludeCharacters' failed to satisfy constraint: Member must have length less than or equal to 4096")},

		// Filters.
		{"filter key enum", OpListSecrets, `{"Filters":[{"Key":"invalid","Values":["foo"]}]}`, V, vmsg("Value 'invalid' at 'filters.1.member.key' failed to satisfy constraint: " + filterEnum)},
		{"filter value pattern", OpListSecrets, `{"Filters":[{"Key":"name","Values":["ok","bad#"]}]}`, V, vmsg("Value 'bad#' at 'filters.1.member.values.2.member' failed to satisfy constraint: " + filterPattern)},
		{"filter value 513", OpListSecrets, `{"Filters":[{"Key":"name","Values":["` + long(513) + `"]}]}`, V, vmsg("Value '" + long(513) + "' at 'filters.1.member.values.1.member' failed to satisfy constraint: Member must have length less than or equal to 512")},
		{"filter values empty", OpListSecrets, `{"Filters":[{"Key":"name","Values":[]}]}`, V, vmsg("Value '[]' at 'filters.1.member.values' failed to satisfy constraint: Member must have length greater than or equal to 1")},
		{"filter values 11", OpListSecrets, `{"Filters":[{"Key":"name","Values":["` + strings.Repeat(`a","`, 10) + `a"]}]}`, V, vmsg("Value '[" + strings.Repeat("a, ", 10) + "a]' at 'filters.1.member.values' failed to satisfy constraint: Member must have length less than or equal to 10")},
		{"filters 11", OpListSecrets, `{"Filters":[` + strings.Repeat(`{"Key":"name","Values":["a"]},`, 10) + `{"Key":"name","Values":["a"]}]}`, V, vmsg("Value '[" + strings.Repeat("{Key=name, Values=[a]}, ", 10) + "{Key=name, Values=[a]}]' at 'filters' failed to satisfy constraint: Member must have length less than or equal to 10")},
		{"filter without key", OpListSecrets, `{"Filters":[{"Values":["foo"]}]}`, IPE, MsgInvalidFilterKey},
		{"filter without values", OpListSecrets, `{"Filters":[{"Key":"description"}]}`, IPE, "Invalid filter values for key: description"},
		{"shape before missing key", OpListSecrets, `{"Filters":[{"Values":["foo"]},{"Key":"bad","Values":["x"]}]}`, V, vmsg("Value 'bad' at 'filters.2.member.key' failed to satisfy constraint: " + filterEnum)},
		{"batch filter without values", OpBatchGetSecretValue, `{"Filters":[{"Key":"name"}]}`, IPE, "Invalid filter values for key: name"},

		// At most ten violations are listed.
		{"ten violations at most", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","VersionStages":["` + strings.Repeat(`","`, 11) + `"]}`, V, vmsg(func() []string {
			var out []string
			for i := 1; i <= 10; i++ {
				out = append(out, fmt.Sprintf("Value '' at 'versionStages.%d.member' failed to satisfy constraint: Member must have length greater than or equal to 1", i))
			}
			return out
		}()...)},

		// Durations and schedules.
		{"duration pattern", OpRotateSecret, `{"SecretId":"a",` + tok + `,"RotationRules":{"Duration":"5x"}}`, V, vmsg("Value '5x' at 'rotationRules.duration' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]+h")},
		{"duration whole match", OpRotateSecret, `{"SecretId":"a",` + tok + `,"RotationRules":{"Duration":"a3h"}}`, V, vmsg("Value 'a3h' at 'rotationRules.duration' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]+h")},
		{"duration length", OpRotateSecret, `{"SecretId":"a",` + tok + `,"RotationRules":{"Duration":"1000h"}}`, V, vmsg("Value '1000h' at 'rotationRules.duration' failed to satisfy constraint: Member must have length less than or equal to 3")},
		{"schedule pattern", OpRotateSecret, `{"SecretId":"a",` + tok + `,"RotationRules":{"ScheduleExpression":"rate(4 hours);"}}`, V, vmsg(`Value 'rate(4 hours);' at 'rotationRules.scheduleExpression' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z\(\)#\?\*\-\/, ]+`)},
		{"role arn short", OpRotateSecret, `{"SecretId":"a",` + tok + `,"ExternalSecretRotationRoleArn":"arn"}`, V, vmsg("Value 'arn' at 'externalSecretRotationRoleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")},
		{"policy required", OpValidateResourcePolicy, `{}`, V, vmsg("Value null at 'resourcePolicy' failed to satisfy constraint: Member must not be null")},
		{"policy 20481", OpPutResourcePolicy, `{"SecretId":"a","ResourcePolicy":"` + long(20481) + `"}`, V, vmsg("Value '" + long(20481) + "' at 'resourcePolicy' failed to satisfy constraint: Member must have length less than or equal to 20480")},

		// Names.
		{"secretId bad character", OpGetSecretValue, `{"SecretId":"my secret"}`, V, MsgInvalidName},
		{"secretId colon", OpDeleteSecret, `{"SecretId":"a:b"}`, V, MsgInvalidName},
		{"secretId non-ASCII", OpTagResource, `{"SecretId":"café","Tags":[]}`, V, MsgInvalidName},
		{"secretId ARN upper case prefix is a name", OpDescribeSecret, `{"SecretId":"ARN:aws:secretsmanager:x"}`, V, MsgInvalidName},
		{"name bad character", OpCreateSecret, `{"Name":"a!"}`, V, MsgInvalidName},
		{"name arn is a name", OpCreateSecret, `{"Name":"arn:aws:secretsmanager:us-east-1:1:secret:a"}`, V, MsgInvalidName},
		{"batch entry name", OpBatchGetSecretValue, `{"SecretIdList":["ok","not ok"]}`, V, MsgInvalidName},
		{"validate policy secret name", OpValidateResourcePolicy, `{"SecretId":"x y","ResourcePolicy":"{}"}`, V, MsgInvalidName},
		{"shape before name", OpGetSecretValue, `{"SecretId":"a b","VersionId":"x"}`, V, vmsg("Value 'x' at 'versionId' failed to satisfy constraint: Member must have length greater than or equal to 32")},

		// Service checks before the lookup.
		{"create both values", OpCreateSecret, `{"Name":"a",` + tok + `,"SecretString":"s","SecretBinary":"AA=="}`, IPE, MsgBothValues},
		{"create value without token", OpCreateSecret, `{"Name":"a","SecretString":"s"}`, IRE, MsgTokenRequired},
		{"create binary without token", OpCreateSecret, `{"Name":"a","SecretBinary":"AA=="}`, IRE, MsgTokenRequired},
		{"put neither value", OpPutSecretValue, `{"SecretId":"a",` + tok + `}`, IRE, MsgNoValue},
		{"put both values", OpPutSecretValue, `{"SecretId":"a",` + tok + `,"SecretString":"s","SecretBinary":"AA=="}`, IPE, MsgBothValues},
		{"put without token", OpPutSecretValue, `{"SecretId":"a","SecretString":"s"}`, IRE, MsgTokenRequired},
		{"update both values", OpUpdateSecret, `{"SecretId":"a",` + tok + `,"SecretString":"s","SecretBinary":"AA=="}`, IPE, MsgBothValues},
		{"update value without token", OpUpdateSecret, `{"SecretId":"a","SecretBinary":"AA=="}`, IRE, MsgTokenRequired},
		{"recovery window 0", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":0}`, IPE, MsgRecoveryWindow},
		{"recovery window 6", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":6}`, IPE, MsgRecoveryWindow},
		{"recovery window 31", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":31}`, IPE, MsgRecoveryWindow},
		{"recovery window negative with force", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":-1,"ForceDeleteWithoutRecovery":true}`, IPE, MsgRecoveryWindow},
		{"window with force", OpDeleteSecret, `{"SecretId":"a","RecoveryWindowInDays":10,"ForceDeleteWithoutRecovery":true}`, IPE, MsgForceWithWindow},
		{"batch both", OpBatchGetSecretValue, `{"SecretIdList":["a"],"Filters":[{"Key":"name","Values":["a"]}]}`, IPE, MsgBatchEitherOr},
		{"batch neither", OpBatchGetSecretValue, `{}`, IPE, MsgBatchEitherOr},
		{"batch max without filters", OpBatchGetSecretValue, `{"SecretIdList":["a"],"MaxResults":5}`, IPE, MsgBatchMaxResults},
		{"rotate without token", OpRotateSecret, `{"SecretId":"a"}`, IPE, MsgTokenRequired},
		{"rotate token 31", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + long(31) + `"}`, IPE, MsgTokenLength},
		{"rotate token 65", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + long(65) + `"}`, IPE, MsgTokenLength},
		{"rotate token empty", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":""}`, IPE, MsgTokenLength},
		{"rotate token 32", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + long(32) + `"}`, "", ""},
		{"rotate token 64", OpRotateSecret, `{"SecretId":"a","ClientRequestToken":"` + long(64) + `"}`, "", ""},
		{"rotate shape first", OpRotateSecret, `{"SecretId":""}`, V, vmsg("Value '' at 'secretId' failed to satisfy constraint: Member must have length greater than or equal to 1")},
	})
}

func TestDecodeValues(t *testing.T) {
	bin := []byte{0, 1, 2, 0xff, '<', '&'}
	in, err := Decode[CreateSecretInput]([]byte(`{"Name":"prod/db","ClientRequestToken":"` + token36 + `","SecretBinary":"` +
		base64.StdEncoding.EncodeToString(bin) + `","Description":"","Tags":[{"Key":"env","Value":"prod"},{"Key":"team"}],"ForceOverwriteReplicaSecret":"no"}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "prod/db" || !bytes.Equal(in.SecretBinary, bin) || in.SecretString != nil || in.ClientRequestToken == nil || *in.ClientRequestToken != token36 {
		t.Fatalf("decoded %#v", in)
	}
	if in.Description == nil || *in.Description != "" {
		t.Fatalf("an empty Description must be present: %v", in.Description)
	}
	if in.KmsKeyID != nil || in.Type != nil || in.AddReplicaRegions != nil {
		t.Fatalf("absent members must stay nil: %#v", in)
	}
	if !reflect.DeepEqual(in.Tags, []Tag{{"env", "prod"}, {"team", ""}}) {
		t.Fatalf("tags %#v", in.Tags)
	}
	if in.ForceOverwriteReplicaSecret == nil || *in.ForceOverwriteReplicaSecret {
		t.Fatalf("ForceOverwriteReplicaSecret \"no\" must be false: %v", in.ForceOverwriteReplicaSecret)
	}

	ls, err := Decode[ListSecretsInput]([]byte(`{"MaxResults":7.9,"Filters":[{"Key":"tag-key","Values":["!env","a"]}],"SortOrder":"desc","IncludePlannedDeletion":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if *ls.MaxResults != 7 || *ls.Filters[0].Key != FilterTagKey || !reflect.DeepEqual(ls.Filters[0].Values, []string{"!env", "a"}) ||
		*ls.SortOrder != SortOrderDesc || ls.SortBy != nil || !*ls.IncludePlannedDeletion {
		t.Fatalf("decoded %+v", ls)
	}

	rs, err := Decode[RotateSecretInput]([]byte(`{"SecretId":"a","ClientRequestToken":"` + token36 + `","RotationRules":{"AutomaticallyAfterDays":30,"Duration":"2h"},"RotateImmediately":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if *rs.RotationRules.AutomaticallyAfterDays != 30 || *rs.RotationRules.Duration != "2h" || rs.RotationRules.ScheduleExpression != nil || rs.RotateImmediatelyOrDefault() {
		t.Fatalf("decoded %+v", rs)
	}
	if !(RotateSecretInput{}).RotateImmediatelyOrDefault() {
		t.Fatal("RotateImmediately defaults to true")
	}

	// A JSON null leaves a member absent.
	us, err := Decode[UpdateSecretInput]([]byte(`{"SecretId":"a","KmsKeyId":null,"Description":"d"}`))
	if err != nil || us.KmsKeyID != nil || *us.Description != "d" {
		t.Fatalf("decoded %+v, %v", us, err)
	}
}

func TestDecodeInputDispatch(t *testing.T) {
	v, err := DecodeInput(OpGetSecretValue, []byte(`{"SecretId":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := v.(*GetSecretValueInput); !ok || in.SecretID != "a" {
		t.Fatalf("DecodeInput = %#v", v)
	}
	if _, err := DecodeInput("Nope", []byte(`{}`)); awserr.CodeOf(err) != UnknownOperationException {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := DecodeInput(OpReplicateSecretToRegions, []byte(`{}`)); awserr.CodeOf(err) != awserr.InvalidRequest {
		t.Fatalf("replication op: %v", err)
	}
	// Every operation with an input shape decodes (its schema builds) and reports AWS types only.
	for op := range inputDecoders {
		_, err := DecodeInput(op, []byte(`{}`))
		if err != nil {
			switch awserr.CodeOf(err) {
			case ValidationException, awserr.InvalidParameter, awserr.InvalidRequest:
			default:
				t.Errorf("%s: %v", op, err)
			}
		}
	}
}

func TestRotateCheckRotation(t *testing.T) {
	days := func(n int64) *int64 { return &n }
	s := func(v string) *string { return &v }
	cases := []struct {
		name string
		in   RotateSecretInput
		msg  string
	}{
		{"nothing", RotateSecretInput{}, ""},
		{"lambda 2048", RotateSecretInput{RotationLambdaARN: s(strings.Repeat("a", 2048))}, ""},
		{"lambda 2049", RotateSecretInput{RotationLambdaARN: s(strings.Repeat("a", 2049))}, MsgLambdaARNLength},
		{"days 0", RotateSecretInput{RotationRules: &RotationRules{AutomaticallyAfterDays: days(0)}}, MsgAfterDaysRange},
		{"days 1", RotateSecretInput{RotationRules: &RotationRules{AutomaticallyAfterDays: days(1)}}, ""},
		{"days 1000", RotateSecretInput{RotationRules: &RotationRules{AutomaticallyAfterDays: days(1000)}}, ""},
		{"days 1001", RotateSecretInput{RotationRules: &RotationRules{AutomaticallyAfterDays: days(1001)}}, MsgAfterDaysRange},
		{"days and schedule", RotateSecretInput{RotationRules: &RotationRules{AutomaticallyAfterDays: days(3), ScheduleExpression: s("rate(4 hours)")}}, MsgDaysAndSchedule},
		{"lambda first", RotateSecretInput{RotationLambdaARN: s(strings.Repeat("a", 2049)), RotationRules: &RotationRules{AutomaticallyAfterDays: days(0)}}, MsgLambdaARNLength},
	}
	for _, c := range cases {
		err := c.in.CheckRotation()
		if c.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != awserr.InvalidParameter || e.Message != c.msg {
			t.Errorf("%s: %v, want InvalidParameterException %q", c.name, err, c.msg)
		}
	}
}

// A secret value never appears in an error, whatever is wrong with the request.
func TestDecodeNeverEchoesSecrets(t *testing.T) {
	secret := "Tr0ub4dor&3-correct-horse"
	bin := base64.StdEncoding.EncodeToString([]byte(secret))
	bodies := []string{
		`{"Name":"a","SecretString":"` + secret + `"}`,                                                       // no token
		`{"Name":"a b","SecretString":"` + secret + `","ClientRequestToken":"` + token36 + `"}`,              // bad name
		`{"Name":"a","SecretString":"` + secret + `","SecretBinary":"` + bin + `","ClientRequestToken":"x"}`, // shape
		`{"Name":"a","SecretString":"` + secret + `","SecretBinary":"` + bin + `","ClientRequestToken":"` + token36 + `"}`,
		`{"Name":"a","SecretString":"` + secret + strings.Repeat("x", 65536) + `","ClientRequestToken":"` + token36 + `"}`,
		`{"Name":"a","SecretString":"` + secret + `","SecretBinary":5}`,
		`{"Name":"a","SecretBinary":"` + secret + `"}`,
		`{"Name":"a","SecretBinary":"` + secret + `=="}`,
		`{"Name":"a","SecretString":"` + secret + `",`,
	}
	for _, b := range bodies {
		for _, op := range []string{OpCreateSecret, OpPutSecretValue, OpUpdateSecret} {
			body := b
			if op != OpCreateSecret {
				body = strings.Replace(b, `"Name":`, `"SecretId":`, 1)
			}
			_, err := DecodeInput(op, []byte(body))
			if err == nil {
				t.Fatalf("%s %s: no error", op, body[:40])
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), bin) || strings.Contains(err.Error(), "Tr0ub4dor") {
				t.Fatalf("%s: the secret is in the error: %v", op, err)
			}
		}
	}
}
