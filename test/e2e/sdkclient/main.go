// Command sdkclient is the end-to-end suite's AWS SDK workload (the chart's example workload): an
// unmodified aws-sdk-go-v2 program, configured only by the environment EKS gives a pod with an IAM
// role for its service account (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_REGION, the
// endpoints and AWS_CA_BUNDLE). Every few seconds it reads the secret SECRET_ID names and prints
// one line per attempt:
//
//	get ok secret=NAME version=VERSION-ID stages=AWSCURRENT length=N
//	get failed secret=NAME code=CODE
//
// and, once at start, it tries each of the comma-separated OTHER_SECRET_ID (secrets it must not
// read) until the API answers, printing
//
//	other refused secret=ID code=CODE
//	other READ secret=ID version=VERSION-ID
//
// It never prints a value, nor anything drawn from one besides its length.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

const every = 3 * time.Second

// code is the AWS error code of err, or "" when the API did not answer (a network error).
func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// describe is a one-line account of a failure: the code, or the error when there is none (no
// value is ever part of an error).
func describe(err error) string {
	if c := code(err); c != "" {
		return "code=" + c
	}
	return "error=" + strings.Join(strings.Fields(err.Error()), " ")
}

func get(ctx context.Context, sm *secretsmanager.Client, id string) (*secretsmanager.GetSecretValueOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
}

func length(out *secretsmanager.GetSecretValueOutput) int {
	if out.SecretString != nil {
		return len(*out.SecretString)
	}
	return len(out.SecretBinary)
}

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Printf("config failed error=%s\n", strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	secret := os.Getenv("SECRET_ID")
	var others []string
	for id := range strings.SplitSeq(os.Getenv("OTHER_SECRET_ID"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			others = append(others, id)
		}
	}
	fmt.Printf("started secret=%s others=%d\n", secret, len(others))
	for {
		// Each other secret until the API answers for it (a network error is tried again).
		pending := others[:0]
		for _, id := range others {
			out, err := get(ctx, sm, id)
			switch {
			case err == nil:
				fmt.Printf("other READ secret=%s version=%s\n", id, aws.ToString(out.VersionId))
			case code(err) != "":
				fmt.Printf("other refused secret=%s code=%s\n", id, code(err))
			default:
				fmt.Printf("other failed secret=%s %s\n", id, describe(err))
				pending = append(pending, id)
			}
		}
		others = pending
		if secret != "" {
			out, err := get(ctx, sm, secret)
			if err != nil {
				fmt.Printf("get failed secret=%s %s\n", secret, describe(err))
			} else {
				fmt.Printf("get ok secret=%s version=%s stages=%s length=%d\n", secret, aws.ToString(out.VersionId),
					strings.Join(out.VersionStages, ","), length(out))
			}
		}
		time.Sleep(every)
	}
}
