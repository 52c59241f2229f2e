package xnum_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/gobuild"
)

// The module path prefixes of each cloud's SDKs.
var (
	alibabaSDKs    = []string{"github.com/aliyun/", "github.com/alibabacloud-go/"}
	volcengineSDKs = []string{"github.com/volcengine/"}
	natsClient     = "github.com/nats-io/"
)

// Each function binary, built as s.yaml builds it, links its own cloud's
// SDK and not the other's, and remain and pools no NATS client (s.yaml
// builds them without their NATS trigger, which FC would freeze): a function
// carries (and initialises at every cold start) only what it calls there.
func TestEachFunctionLinksOnlyItsCloud(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		need      []string // module prefixes that must be linked
		forbidden []string
	}{
		{"remain", []string{"github.com/aliyun/alibaba-cloud-sdk-go"}, append(volcengineSDKs, natsClient)},
		{"pools", []string{"github.com/volcengine/volcengine-go-sdk"}, append(alibabaSDKs, natsClient)},
		{"buy", []string{"github.com/aliyun/alibaba-cloud-sdk-go", "github.com/nats-io/nats.go"}, volcengineSDKs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkg := "./functions/" + tc.name
			spec, err := gobuild.FromSYAML("s.yaml", pkg)
			if err != nil {
				t.Fatal(err)
			}
			bin, err := spec.Build(ctx, dir, tc.name, pkg)
			if err != nil {
				t.Fatal(err)
			}
			mods, err := gobuild.Modules(ctx, bin)
			if err != nil {
				t.Fatal(err)
			}
			has := func(prefix string) bool {
				for _, m := range mods {
					if strings.HasPrefix(m, prefix) {
						return true
					}
				}
				return false
			}
			for _, p := range tc.need {
				if !has(p) {
					t.Errorf("%s does not link %s; its modules: %v", tc.name, p, mods)
				}
			}
			for _, p := range tc.forbidden {
				for _, m := range mods {
					if strings.HasPrefix(m, p) {
						t.Errorf("%s links %s (go list -deps %s shows what imports it)", tc.name, m, pkg)
					}
				}
			}
		})
	}
}

// A binary built without NATS refuses a NATS configuration it cannot serve,
// naming the variable, rather than ignoring it.
func TestNoNATSBuildRefusesNATS(t *testing.T) {
	ctx := context.Background()
	spec, err := gobuild.FromSYAML("s.yaml", "./functions/remain")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := spec.Build(ctx, t.TempDir(), "remain", "./functions/remain")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=k", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=s", "NATS_URL=nats://127.0.0.1:4222", "FC_SERVER_PORT=0"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NATS_URL") || !strings.Contains(string(out), "without NATS") {
		t.Fatalf("remain built as s.yaml builds it, with NATS_URL set: %v\n%s", err, out)
	}
}
