package gobuild

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFromSYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(path, []byte(`resources:
  remain:
    actions:
      pre-deploy:
        - run: CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags="-s -w" -tags 'lambda.norpc' -o dist/remain/bootstrap ./functions/remain
  pools:
    actions:
      pre-deploy:
        - run: echo ./functions/pools
`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := FromSYAML(path, "./functions/remain")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spec.String(), "CGO_ENABLED=0 -trimpath -ldflags=-s -w -tags lambda.norpc"; got != want {
		t.Errorf("spec %q, want %q", got, want)
	}
	for _, pkg := range []string{"./functions/pools", "./functions/buy"} {
		if _, err := FromSYAML(path, pkg); err == nil {
			t.Errorf("%s: no error for a function s.yaml does not build", pkg)
		}
	}
	if _, err := shellWords(`go build -ldflags="-s -w`); err == nil {
		t.Error("unterminated quote: no error")
	}
}
