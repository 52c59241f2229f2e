package xnum_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// deployEnv is what an operator exports before `s deploy`.
var deployEnv = map[string]string{
	"XNUM_FC_ROLE_ARN":       "acs:ram::1234567890:role/xnum-fc",
	"XNUM_VPC_ID":            "vpc-bp1xnum",
	"XNUM_VSWITCH_ID":        "vsw-bp1xnum",
	"XNUM_SECURITY_GROUP_ID": "sg-bp1xnum",
	"NATS_URL":               "nats://10.0.0.5:4222",
	"VOLC_ACCESSKEY":         "AKLTexample",
	"VOLC_SECRETKEY":         "example-secret",
}

// renderTemplate resolves s.yaml the way `s preview` does for what the file
// uses: ${env('NAME')}, ${env('NAME', 'default')} and ${vars.path}.
func renderTemplate(t *testing.T, path string, env map[string]string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars, _ := doc["vars"].(map[string]any)
	vars = resolve(t, vars, env, nil).(map[string]any)
	doc["resources"] = resolve(t, doc["resources"], env, vars)
	return doc
}

var (
	whole = regexp.MustCompile(`^\$\{([^}]*)\}$`)
	part  = regexp.MustCompile(`\$\{([^}]*)\}`)
	envFn = regexp.MustCompile(`^env\('([A-Za-z0-9_]+)'(?:,\s*'([^']*)')?\)$`)
)

func resolve(t *testing.T, v any, env map[string]string, vars map[string]any) any {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = resolve(t, x, env, vars)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = resolve(t, x, env, vars)
		}
		return out
	case string:
		if m := whole.FindStringSubmatch(v); m != nil {
			return expr(t, m[1], env, vars)
		}
		return part.ReplaceAllStringFunc(v, func(s string) string {
			return fmt.Sprint(expr(t, part.FindStringSubmatch(s)[1], env, vars))
		})
	}
	return v
}

func expr(t *testing.T, e string, env map[string]string, vars map[string]any) any {
	t.Helper()
	if m := envFn.FindStringSubmatch(e); m != nil {
		if v, ok := env[m[1]]; ok {
			return v
		}
		if !strings.Contains(e, ",") {
			t.Fatalf("s.yaml needs environment variable %s, which the deploy env of this test lacks", m[1])
		}
		return m[2]
	}
	if path, ok := strings.CutPrefix(e, "vars."); ok {
		var cur any = vars
		for _, k := range strings.Split(path, ".") {
			m, _ := cur.(map[string]any)
			if _, ok := m[k]; !ok {
				t.Fatalf("s.yaml refers to an undefined ${vars.%s}", path)
			}
			cur = m[k]
		}
		return cur
	}
	t.Fatalf("s.yaml uses an expression this test does not know: ${%s}", e)
	return nil
}

// Every fc3 resource of s.yaml is valid fc3 props, as the component's own
// schema says.
func TestSYAMLMatchesFC3Schema(t *testing.T) {
	doc := renderTemplate(t, "s.yaml", deployEnv)
	if doc["edition"] != "3.0.0" {
		t.Fatalf("edition %v, want 3.0.0 (Serverless Devs 3)", doc["edition"])
	}
	c := jsonschema.NewCompiler()
	schemaFile, err := os.Open("testdata/fc3-props.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer schemaFile.Close()
	schemaDoc, err := jsonschema.UnmarshalJSON(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("fc3.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("fc3.json")
	if err != nil {
		t.Fatal(err)
	}
	resources := doc["resources"].(map[string]any)
	for name, r := range resources {
		r := r.(map[string]any)
		if r["component"] != "fc3" {
			continue
		}
		// Round-trip through JSON, as s hands props to the component.
		b, _ := json.Marshal(r["props"])
		props, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(props); err != nil {
			t.Errorf("resource %s: %v", name, err)
		}
	}
}

// The fields the functions rely on: custom runtime on FC's port running the
// binary the build step makes, triggers as each function expects them.
func TestSYAMLFunctions(t *testing.T) {
	doc := renderTemplate(t, "s.yaml", deployEnv)
	resources := doc["resources"].(map[string]any)
	want := map[string]string{"remain": "remain", "pools": "pools", "buy": "buy", "buy-worker": "buy"}
	for name, fn := range want {
		r, ok := resources[name].(map[string]any)
		if !ok {
			t.Errorf("no resource %s", name)
			continue
		}
		props := r["props"].(map[string]any)
		if rt := props["runtime"].(string); !strings.HasPrefix(rt, "custom") || rt == "custom-container" {
			t.Errorf("%s: runtime %s, want a custom runtime", name, rt)
		}
		crc := props["customRuntimeConfig"].(map[string]any)
		if crc["port"] != 9000 || fmt.Sprint(crc["command"]) != "[/code/bootstrap]" {
			t.Errorf("%s: customRuntimeConfig %v, want /code/bootstrap on 9000", name, crc)
		}
		if props["code"] != "./dist/"+fn {
			t.Errorf("%s: code %v, want ./dist/%s", name, props["code"], fn)
		}
		build := fmt.Sprint(r["actions"].(map[string]any)["pre-deploy"])
		for _, s := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "-o dist/" + fn + "/bootstrap", "./functions/" + fn} {
			if !strings.Contains(build, s) {
				t.Errorf("%s: build step %s lacks %q", name, build, s)
			}
		}
		if _, err := os.Stat("functions/" + fn + "/main.go"); err != nil {
			t.Errorf("%s: builds ./functions/%s: %v", name, fn, err)
		}
		if props["role"] != deployEnv["XNUM_FC_ROLE_ARN"] {
			t.Errorf("%s: role %v", name, props["role"])
		}
		for k, v := range props["environmentVariables"].(map[string]any) {
			if strings.HasPrefix(k, "ALIBABA_CLOUD_ACCESS_KEY") || k == "ALIBABA_CLOUD_SECURITY_TOKEN" {
				t.Errorf("%s: stores %s=%v; the role's per-request credentials are meant instead", name, k, v)
			}
		}
	}

	triggers := func(name string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, tr := range resources[name].(map[string]any)["props"].(map[string]any)["triggers"].([]any) {
			tr := tr.(map[string]any)
			out[tr["triggerType"].(string)] = tr["triggerConfig"].(map[string]any)
		}
		return out
	}
	for _, name := range []string{"remain", "pools"} {
		if h := triggers(name)["http"]; h == nil || fmt.Sprint(h["methods"]) != "[GET]" {
			t.Errorf("%s: want a GET HTTP trigger, got %v", name, h)
		}
	}
	buy := triggers("buy")["http"]
	if buy == nil || buy["authType"] != "function" || fmt.Sprint(buy["methods"]) != "[GET POST]" {
		t.Errorf("buy: want an HTTP trigger with function auth for GET and POST, got %v", buy)
	}
	worker := triggers("buy-worker")
	if worker["timer"] == nil || worker["timer"]["payload"] != "drain" {
		t.Errorf("buy-worker: want a timer trigger with the drain payload, got %v", worker["timer"])
	}
	if worker["http"] != nil {
		t.Error("buy-worker must not take HTTP: intake is the buy function's")
	}
	wp := resources["buy-worker"].(map[string]any)["props"].(map[string]any)
	if wp["instanceConcurrency"] != 1 || fmt.Sprint(wp["concurrencyConfig"]) != "map[reservedConcurrency:1]" {
		t.Errorf("buy-worker: one invocation on one instance keeps XNUM_ALIYUN_BUY_QPS the account's rate; got concurrency %v %v",
			wp["instanceConcurrency"], wp["concurrencyConfig"])
	}
	if env := wp["environmentVariables"].(map[string]any); env["XNUM_EVENT_TIMEOUT"] != "110s" || wp["timeout"] != 120 {
		t.Errorf("buy-worker: XNUM_EVENT_TIMEOUT %v must stay under the function's timeout %v", env["XNUM_EVENT_TIMEOUT"], wp["timeout"])
	}
	for _, name := range []string{"buy", "buy-worker"} {
		vpc, _ := resources[name].(map[string]any)["props"].(map[string]any)["vpcConfig"].(map[string]any)
		if vpc["vpcId"] != deployEnv["XNUM_VPC_ID"] {
			t.Errorf("%s: needs VPC access to NATS, got %v", name, vpc)
		}
	}
}
