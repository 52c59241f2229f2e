package main

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/aliyun/credentials-go/credentials/providers"

	"github.com/xnum-dev/xnum/internal/envvar"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
)

// errNoAliyunCredentials says where the default chain looks. The chain's own
// messages are not shown: one of them quotes a profile file it cannot parse,
// secrets and all.
var errNoAliyunCredentials = errors.New("no Alibaba Cloud credentials: set " + aliyun.EnvAccessKeyID + " and " +
	aliyun.EnvAccessKeySecret + " (and " + aliyun.EnvSecurityToken + " for STS), configure a profile with `aliyun configure` " +
	"(~/.aliyun/config.json, or ~/.alibabacloud/credentials; ALIBABA_CLOUD_PROFILE picks one), or run where a RAM role is " +
	"(an ECS instance's, or OIDC: ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)")

// aliyunConfig is the Dyplsapi client's configuration for an operator. The
// key is the environment's when it names one, as for the functions; else
// the first that Alibaba's default credential chain (credentials-go) finds:
// OIDC, the aliyun CLI's profile, the credentials file, the ECS instance's
// RAM role, a credentials URI. It is fetched once: a command runs for
// seconds, and temporary keys last far longer.
func aliyunConfig(lookup envvar.Lookup, logger *slog.Logger) (aliyun.Config, error) {
	if id, _ := lookup(aliyun.EnvAccessKeyID); strings.TrimSpace(id) != "" {
		return aliyun.ConfigFromEnv(lookup)
	}
	c, err := providers.NewDefaultCredentialsProvider().GetCredentials()
	if err != nil || c == nil || c.AccessKeyId == "" {
		return aliyun.Config{}, errNoAliyunCredentials
	}
	logger.Info("Alibaba Cloud credentials from the default chain", "provider", c.ProviderName, "accessKeyId", c.AccessKeyId,
		"sts", c.SecurityToken != "")
	chained := map[string]string{
		aliyun.EnvAccessKeyID:     c.AccessKeyId,
		aliyun.EnvAccessKeySecret: c.AccessKeySecret,
		aliyun.EnvSecurityToken:   c.SecurityToken,
	}
	return aliyun.ConfigFromEnv(func(k string) (string, bool) {
		if v, ok := chained[k]; ok {
			return v, true
		}
		return lookup(k)
	})
}
