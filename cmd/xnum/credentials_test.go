package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xnum-dev/xnum/internal/ledger"
	"github.com/xnum-dev/xnum/pkg/provider/aliyun"
	"github.com/xnum-dev/xnum/pkg/provider/emulator/dypls"
)

// chainOnly leaves xnum orders nothing but Alibaba's default credential
// chain to find a key in: no key in the environment, HOME a new directory,
// no ECS metadata service to ask.
func chainOnly(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	for _, k := range []string{aliyun.EnvAccessKeyID, aliyun.EnvAccessKeySecret, aliyun.EnvSecurityToken,
		"ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_ROLE_ARN",
		"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_CREDENTIALS_URI", "ALIBABA_CLOUD_ECS_METADATA"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	t.Setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
	return home
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// xnum orders reconcile finds its key where Alibaba's tools keep one: the
// aliyun CLI's profile or the credentials file, when the environment names
// none. The emulator checks the signature of the QuerySecretNoDetail that
// the evidence needs, so a settled order is the proof the key was used.
func TestOrdersCredentialsFromTheDefaultChain(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string // under HOME
		env   map[string]string
	}{
		{"aliyun CLI profile", map[string]string{".aliyun/config.json": `{"current":"ops","profiles":[
			{"name":"other","mode":"AK","access_key_id":"nobody","access_key_secret":"nothing","region_id":"cn-hangzhou"},
			{"name":"ops","mode":"AK","access_key_id":"` + dypls.DefaultAccessKeyID + `","access_key_secret":"` + dypls.DefaultAccessKeySecret + `","region_id":"cn-hangzhou"}]}`}, nil},
		{"profile chosen by ALIBABA_CLOUD_PROFILE", map[string]string{".aliyun/config.json": `{"current":"other","profiles":[
			{"name":"other","mode":"AK","access_key_id":"nobody","access_key_secret":"nothing","region_id":"cn-hangzhou"},
			{"name":"ops","mode":"AK","access_key_id":"` + dypls.DefaultAccessKeyID + `","access_key_secret":"` + dypls.DefaultAccessKeySecret + `","region_id":"cn-hangzhou"}]}`},
			map[string]string{"ALIBABA_CLOUD_PROFILE": "ops"}},
		{"credentials file", map[string]string{".alibabacloud/credentials": "[default]\ntype = access_key\naccess_key_id = " +
			dypls.DefaultAccessKeyID + "\naccess_key_secret = " + dypls.DefaultAccessKeySecret + "\n"}, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newOpsStack(t, nil)
			id := "ord-chain-" + string(rune('a'+i))
			s.inDoubt(id, 2, "BuySecretNo:cut=1")
			sold := s.sold()
			lost := sold[len(sold)-1]
			home := chainOnly(t)
			for name, body := range c.files {
				writeFile(t, filepath.Join(home, name), body)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			out, err := xnum(t, "orders", "reconcile", id, "--secret-no", lost, "--by", "ops-erin", "--wait", "20s")
			if err != nil {
				t.Fatalf("reconcile: %v\n%s", err, out)
			}
			if o := s.get(id); o.Status != ledger.StatusCompleted || len(o.Numbers) != 2 || o.Numbers[0].SecretNo != lost {
				t.Fatalf("after reconcile: %s with %+v", o.Status, o.Numbers)
			}
		})
	}
}

// With no key anywhere, reconcile says where it looked and changes nothing;
// a profile's wrong key is refused by the cloud, and changes nothing either.
func TestOrdersCredentialsRefused(t *testing.T) {
	s := newOpsStack(t, nil)
	s.inDoubt("ord-nokey", 1, "BuySecretNo:cut=1")
	sold := s.sold()
	lost := sold[len(sold)-1]
	home := chainOnly(t)
	s.refused("ord-nokey", "aliyun configure", "orders", "reconcile", "ord-nokey", "--secret-no", lost)

	writeFile(t, filepath.Join(home, ".aliyun/config.json"), `{"current":"ops","profiles":[
		{"name":"ops","mode":"AK","access_key_id":"`+dypls.DefaultAccessKeyID+`","access_key_secret":"wrong-secret","region_id":"cn-hangzhou"}]}`)
	s.refused("ord-nokey", "SignatureDoesNotMatch", "orders", "reconcile", "ord-nokey", "--secret-no", lost)

	// A broken profile file is not quoted back: it may hold a secret.
	writeFile(t, filepath.Join(home, ".aliyun/config.json"), `{"current":"ops","profiles":[{"access_key_secret":"Sup3rSecret`)
	out, err := xnum(t, "orders", "reconcile", "ord-nokey", "--secret-no", lost)
	if err == nil || strings.Contains(err.Error()+out, "Sup3rSecret") {
		t.Fatalf("got %v\n%s", err, out)
	}
}
