package provider

import (
	"context"
	"log/slog"
)

// Credentials are a cloud access key pair, temporary when SecurityToken is
// set. They print and log with the secret and the token redacted.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

// String shows the key id only, so a stray %v never leaks a secret.
func (c Credentials) String() string {
	s := "Credentials{AccessKeyID: " + c.AccessKeyID + ", AccessKeySecret: " + redacted(c.AccessKeySecret)
	if c.SecurityToken != "" {
		s += ", SecurityToken: " + redacted(c.SecurityToken)
	}
	return s + "}"
}

// GoString keeps %#v as safe as %v.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps slog from logging the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("accessKeyId", c.AccessKeyID),
		slog.Bool("sts", c.SecurityToken != ""),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

type credentialsKey struct{}

// ContextWithCredentials returns a context that carries per-request
// credentials, such as the STS credentials FC passes with each invocation of
// a function with a role. Clients that support them use these instead of
// their configured ones.
func ContextWithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

// CredentialsFromContext returns the credentials ContextWithCredentials put
// in ctx, if any with a key id.
func CredentialsFromContext(ctx context.Context) (Credentials, bool) {
	c, ok := ctx.Value(credentialsKey{}).(Credentials)
	return c, ok && c.AccessKeyID != ""
}
