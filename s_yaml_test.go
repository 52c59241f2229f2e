package xnum_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/xnum-dev/xnum/internal/trigger/fc"
)

// deployEnv is what an operator exports before `s deploy`.
var deployEnv = map[string]string{
	"XNUM_FC_ROLE_ARN":       "acs:ram::1234567890:role/xnum-fc",
	"XNUM_VPC_ID":            "vpc-bp1xnum",
	"XNUM_VSWITCH_ID":        "vsw-bp1xnum",
	"XNUM_SECURITY_GROUP_ID": "sg-bp1xnum",
	"NATS_URL":               "tls://nats.internal:4222",
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

// deployFiles are the deployments: s.yaml on the custom runtime, its go1
// variant on FC's Go runtime.
var deployFiles = []string{"s.yaml", "s.go1.yaml"}

// Every fc3 resource of each deployment is valid fc3 props, as the
// component's own schema says.
func TestSYAMLMatchesFC3Schema(t *testing.T) {
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
	for _, file := range deployFiles {
		t.Run(file, func(t *testing.T) {
			doc := renderTemplate(t, file, deployEnv)
			if doc["edition"] != "3.0.0" {
				t.Fatalf("edition %v, want 3.0.0 (Serverless Devs 3)", doc["edition"])
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
		})
	}
}

// binaryOf names the function binary each resource runs.
var binaryOf = map[string]string{"remain": "remain", "pools": "pools", "buy": "buy", "buy-worker": "buy"}

// codeOf is the directory of each resource's code package under dist/: the
// buy functions share a binary but not a package, as each carries its own
// NATS credentials.
var codeOf = map[string]string{"remain": "remain", "pools": "pools", "buy": "buy", "buy-worker": "buy-worker"}

// build checks that a resource builds its binary, a static linux/amd64 one
// at out from ./functions/fn, before `s deploy` and before `s local`.
func checkBuild(t *testing.T, name string, r map[string]any, fn, out string) {
	t.Helper()
	actions, _ := r["actions"].(map[string]any)
	for _, hook := range []string{"pre-deploy", "pre-local"} {
		build := fmt.Sprint(actions[hook])
		for _, s := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "go build", "-o " + out + " ", "./functions/" + fn} {
			if !strings.Contains(build, s) {
				t.Errorf("%s: %s step %s lacks %q", name, hook, build, s)
			}
		}
	}
	if _, err := os.Stat("functions/" + fn + "/main.go"); err != nil {
		t.Errorf("%s: builds ./functions/%s: %v", name, fn, err)
	}
}

// The go1 variant runs the same binaries on FC's Go runtime, each built as
// the handler's name, with the lifecycle hooks of s.yaml; every other prop
// is s.yaml's, so the two cannot drift apart.
func TestSGo1YAML(t *testing.T) {
	main := renderTemplate(t, "s.yaml", deployEnv)["resources"].(map[string]any)
	go1 := renderTemplate(t, "s.go1.yaml", deployEnv)["resources"].(map[string]any)
	if len(go1) != len(main) {
		t.Errorf("s.go1.yaml has %d resources, s.yaml %d", len(go1), len(main))
	}
	for name, fn := range binaryOf {
		r, ok := go1[name].(map[string]any)
		if !ok {
			t.Errorf("s.go1.yaml: no resource %s", name)
			continue
		}
		props := r["props"].(map[string]any)
		if props["runtime"] != "go1" || props["handler"] != "main" || props["code"] != "./dist/go1/"+codeOf[name] {
			t.Errorf("%s: runtime %v handler %v code %v, want go1 running main from ./dist/go1/%s", name, props["runtime"], props["handler"], props["code"], codeOf[name])
		}
		if _, ok := props["customRuntimeConfig"]; ok {
			t.Errorf("%s: a go1 function has no customRuntimeConfig", name)
		}
		checkBuild(t, name, r, fn, "dist/go1/"+codeOf[name]+"/main")
		hooks, _ := props["instanceLifecycleConfig"].(map[string]any)
		if _, ok := hooks["preStop"]; !ok {
			t.Errorf("%s: no preStop hook (NATS is drained there)", name)
		}
		if _, ok := hooks["initializer"]; ok != strings.HasPrefix(name, "buy") {
			t.Errorf("%s: initializer %v; the buy functions set NATS up there, the others have nothing to set up", name, hooks["initializer"])
		}
		same := map[string]any{}
		for k, v := range main[name].(map[string]any)["props"].(map[string]any) {
			switch k {
			case "runtime", "handler", "code", "customRuntimeConfig", "instanceLifecycleConfig":
			default:
				same[k] = v
			}
		}
		for k, v := range same {
			if !reflect.DeepEqual(props[k], v) {
				t.Errorf("%s: %s is %v on go1 but %v in s.yaml", name, k, props[k], v)
			}
		}
		for k := range props {
			if _, ok := same[k]; !ok && !slices.Contains([]string{"runtime", "handler", "code", "instanceLifecycleConfig"}, k) {
				t.Errorf("%s: %s is set on go1 only", name, k)
			}
		}
	}
}

// The fields the functions rely on: custom runtime on FC's port running the
// binary the build step makes, triggers as each function expects them.
func TestSYAMLFunctions(t *testing.T) {
	doc := renderTemplate(t, "s.yaml", deployEnv)
	resources := doc["resources"].(map[string]any)
	for name, fn := range binaryOf {
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
		checkHealthCheck(t, name, crc["healthCheckConfig"])
		if props["code"] != "./dist/"+codeOf[name] {
			t.Errorf("%s: code %v, want ./dist/%s", name, props["code"], codeOf[name])
		}
		checkBuild(t, name, r, fn, "dist/"+codeOf[name]+"/bootstrap")
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
	// Anonymous, remain and pools would show every city's stock and every
	// pool's numbers to the internet and spend the accounts' API quota.
	for _, name := range []string{"remain", "pools"} {
		if h := triggers(name)["http"]; h == nil || fmt.Sprint(h["methods"]) != "[GET]" || h["authType"] != "function" {
			t.Errorf("%s: want a GET HTTP trigger with function auth, got %v", name, h)
		}
	}
	buy := triggers("buy")["http"]
	if buy == nil || buy["authType"] != "function" || fmt.Sprint(buy["methods"]) != "[GET POST]" {
		t.Errorf("buy: want an HTTP trigger with function auth for GET and POST, got %v", buy)
	}
	// The MNS path only hands orders to JetStream (so no order can stop the
	// stream), on the intake function; and waits out a NATS outage rather
	// than dropping what MNS holds.
	mns := triggers("buy")["eventbridge"]
	run, _ := mns["runOptions"].(map[string]any)
	if mns == nil || run["errorsTolerance"] != "NONE" || fmt.Sprint(run["retryStrategy"]) != "map[PushRetryStrategy:EXPONENTIAL_DECAY_RETRY]" {
		t.Errorf("buy: want the MNS EventBridge trigger, errors not tolerated, retried for a day; got %v", mns)
	}
	worker := triggers("buy-worker")
	if worker["timer"] == nil || worker["timer"]["payload"] != "drain" {
		t.Errorf("buy-worker: want a timer trigger with the drain payload, got %v", worker["timer"])
	}
	if worker["http"] != nil {
		t.Error("buy-worker must not take HTTP: it is the intake's")
	}
	// The reports' MNS queue reaches the worker, which can ask Dyplsapi to
	// confirm a report; it waits out an outage like the orders' queue.
	queueOf := func(tr map[string]any) any {
		src, _ := tr["eventSourceConfig"].(map[string]any)
		params, _ := src["eventSourceParameters"].(map[string]any)
		mnsParams, _ := params["sourceMNSParameters"].(map[string]any)
		return mnsParams["QueueName"]
	}
	reports := worker["eventbridge"]
	if reports == nil || queueOf(reports) != "xnum-number-reports" || queueOf(reports) == queueOf(mns) ||
		fmt.Sprint(reports["runOptions"]) != fmt.Sprint(mns["runOptions"]) {
		t.Errorf("buy-worker: want the reports' MNS EventBridge trigger, run as the orders' is; got %v", reports)
	}
	if wp := resources["buy-worker"].(map[string]any)["props"].(map[string]any); wp["internetAccess"] != true {
		t.Error("buy-worker settles from reports with QuerySecretNoDetail: it needs internet access")
	}
	for _, name := range []string{"buy", "buy-worker"} {
		props := resources[name].(map[string]any)["props"].(map[string]any)
		if env := props["environmentVariables"].(map[string]any); env["XNUM_BUY_CONSUMER"] != "false" {
			t.Errorf("%s: XNUM_BUY_CONSUMER %v, want false pinned (FC freezes an instance between invocations)", name, env["XNUM_BUY_CONSUMER"])
		}
		hooks := props["instanceLifecycleConfig"].(map[string]any)
		if hooks["initializer"] == nil || hooks["preStop"] == nil {
			t.Errorf("%s: hooks %v; NATS is set up in the initializer and drained at preStop", name, hooks)
		}
	}
	wp := resources["buy-worker"].(map[string]any)["props"].(map[string]any)
	if wp["instanceConcurrency"] != 1 || fmt.Sprint(wp["concurrencyConfig"]) != "map[reservedConcurrency:1]" {
		t.Errorf("buy-worker: s.yaml deploys one invocation on one instance; got concurrency %v %v",
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
	bp := resources["buy"].(map[string]any)["props"].(map[string]any)
	if woken := bp["environmentVariables"].(map[string]any)["XNUM_BUY_WORKER_FUNCTION"]; woken != wp["functionName"] {
		t.Errorf("buy wakes up %v, but the worker is %v", woken, wp["functionName"])
	}
}

// checkHealthCheck: FC's health check asks the path the runtime answers
// (fc.HealthPath), within the ranges FC documents for CustomHealthCheckConfig.
func checkHealthCheck(t *testing.T, name string, v any) {
	t.Helper()
	hc, _ := v.(map[string]any)
	if hc["httpGetUrl"] != fc.HealthPath {
		t.Errorf("%s: healthCheckConfig %v, want httpGetUrl %s", name, hc, fc.HealthPath)
		return
	}
	for field, r := range map[string][2]int{
		"initialDelaySeconds": {0, 120}, "periodSeconds": {1, 120}, "timeoutSeconds": {1, 3},
		"failureThreshold": {1, 120}, "successThreshold": {1, 120},
	} {
		n, ok := hc[field].(int)
		if !ok || n < r[0] || n > r[1] {
			t.Errorf("%s: healthCheckConfig.%s = %v, want %d to %d", name, field, hc[field], r[0], r[1])
		}
	}
	if hc["timeoutSeconds"].(int) >= hc["periodSeconds"].(int) {
		t.Errorf("%s: a health check's timeout must be shorter than its period: %v", name, hc)
	}
}

// Each deployment's buy functions: the intake never buys, and NATS is
// reached over TLS with each function's own credentials, which its
// pre-deploy puts in its own code package.
func TestSYAMLBuyRolesAndNATS(t *testing.T) {
	for _, file := range deployFiles {
		t.Run(file, func(t *testing.T) {
			resources := renderTemplate(t, file, deployEnv)["resources"].(map[string]any)
			creds := map[string]string{"buy": "$XNUM_NATS_INTAKE_CREDS", "buy-worker": "$XNUM_NATS_WORKER_CREDS"}
			for name, role := range map[string]string{"buy": "intake", "buy-worker": "worker"} {
				r := resources[name].(map[string]any)
				props := r["props"].(map[string]any)
				env := props["environmentVariables"].(map[string]any)
				if env["XNUM_BUY_ROLE"] != role {
					t.Errorf("%s: XNUM_BUY_ROLE %v, want %s", name, env["XNUM_BUY_ROLE"], role)
				}
				if u := fmt.Sprint(env["NATS_URL"]); !strings.HasPrefix(u, "tls://") {
					t.Errorf("%s: NATS_URL %s, want tls://", name, u)
				}
				deploy := fmt.Sprint(r["actions"].(map[string]any)["pre-deploy"])
				dir := strings.TrimPrefix(fmt.Sprint(props["code"]), "./")
				for v, file := range map[string]string{"NATS_CREDS": "nats.creds", "NATS_CA": "nats-ca.pem"} {
					if env[v] != "/code/"+file || !strings.Contains(deploy, dir+"/"+file) {
						t.Errorf("%s: %s=%v, and its pre-deploy must put %s in %s: %s", name, v, env[v], file, dir, deploy)
					}
				}
				for other, c := range creds {
					if strings.Contains(deploy, c) != (other == name) {
						t.Errorf("%s: its pre-deploy copies %s: %s", name, c, deploy)
					}
				}
			}
		})
	}
}
