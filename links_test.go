package xnum_test

import (
	"context"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/gobuild"
)

// The module path prefixes of each cloud's SDKs.
var (
	alibabaSDKs    = []string{"github.com/aliyun/", "github.com/alibabacloud-go/"}
	volcengineSDKs = []string{"github.com/volcengine/"}
)

// Each function binary, built as s.yaml builds it, links its own cloud's
// SDK and not the other's: a function carries (and initialises at every
// cold start) only what it calls.
func TestEachFunctionLinksOnlyItsCloud(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		need      []string // module prefixes that must be linked
		forbidden []string
	}{
		{"remain", []string{"github.com/aliyun/alibaba-cloud-sdk-go"}, volcengineSDKs},
		{"pools", []string{"github.com/volcengine/volcengine-go-sdk"}, alibabaSDKs},
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
						t.Errorf("%s links %s, another cloud's SDK (go list -deps %s shows what imports it)", tc.name, m, pkg)
					}
				}
			}
		})
	}
}
