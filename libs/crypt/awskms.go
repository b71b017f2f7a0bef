package crypt

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// AWSScheme is the reference scheme of AWSKMS: "aws-kms:KEY-ID-OR-ARN" (an
// alias, "alias/NAME" or its ARN, works too).
const AWSScheme = "aws-kms"

// awsContextKey is the encryption context every data key is wrapped with:
// AWS KMS binds it into the ciphertext and logs it in CloudTrail.
const awsContextKey = "tistream"

// AWSConfig says how to reach AWS KMS.
type AWSConfig struct {
	// Region, e.g. "us-east-1"; empty uses the AWS default chain
	// (AWS_REGION, the shared config).
	Region string
	// Endpoint overrides the service endpoint, e.g. a local KMS in tests.
	Endpoint string
	// AccessKey and SecretKey, if set, are static credentials; otherwise
	// the AWS default chain (environment, shared files, instance role).
	AccessKey, SecretKey string
}

// AWSKMS wraps data keys with AWS KMS Encrypt and unwraps them with
// Decrypt, naming the key in both so a data key wrapped by another key is
// refused rather than decrypted with it.
type AWSKMS struct {
	client *kms.Client
}

var _ KMS = (*AWSKMS)(nil)

// NewAWSKMS makes a client; it does not call AWS.
func NewAWSKMS(ctx context.Context, cfg AWSConfig) (*AWSKMS, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws kms config: %w", err)
	}
	client := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &AWSKMS{client: client}, nil
}

// Client is the underlying AWS client (tests create and disable keys
// through it).
func (k *AWSKMS) Client() *kms.Client { return k.client }

func awsEncryptionContext(keyID string) map[string]string {
	return map[string]string{awsContextKey: "data-key:" + keyID}
}

// WrapKey implements KMS.
func (k *AWSKMS) WrapKey(ctx context.Context, ref string, dek []byte) ([]byte, error) {
	id, err := refName(AWSScheme, ref)
	if err != nil {
		return nil, err
	}
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: dek,
		EncryptionContext: awsEncryptionContext(id)})
	if err != nil {
		return nil, awsError(ref, err)
	}
	return out.CiphertextBlob, nil
}

// UnwrapKey implements KMS.
func (k *AWSKMS) UnwrapKey(ctx context.Context, ref string, wrapped []byte) ([]byte, error) {
	id, err := refName(AWSScheme, ref)
	if err != nil {
		return nil, err
	}
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: wrapped,
		EncryptionContext: awsEncryptionContext(id)})
	if err != nil {
		return nil, awsError(ref, err)
	}
	if len(out.Plaintext) != DataKeyLen {
		return nil, fmt.Errorf("%w: %s unwrapped a %d-byte key, want %d", ErrCorrupt, ref, len(out.Plaintext), DataKeyLen)
	}
	return out.Plaintext, nil
}

// awsError maps AWS KMS's exceptions to this package's errors, keeping
// AWS's message.
func awsError(ref string, err error) error {
	var (
		disabled  *types.DisabledException
		state     *types.KMSInvalidStateException
		notFound  *types.NotFoundException
		denied    *types.IncorrectKeyException
		badCipher *types.InvalidCiphertextException
	)
	switch {
	case errors.As(err, &disabled), errors.As(err, &state):
		return fmt.Errorf("%w: %s: %w", ErrKeyDisabled, ref, err)
	case errors.As(err, &notFound):
		return fmt.Errorf("%w: %s: %w", ErrKeyNotFound, ref, err)
	case errors.As(err, &denied), errors.As(err, &badCipher):
		return fmt.Errorf("%w: %s: %w", ErrAuth, ref, err)
	}
	return fmt.Errorf("aws kms %s: %w", ref, err)
}
