// Package gobuild builds the function binaries the way s.yaml's actions
// build them for deployment, so that the benchmarks measure, and the tests
// inspect, what would be deployed.
package gobuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Spec is how one binary is built: the go build flags and the environment,
// and where they were read.
type Spec struct {
	Env   []string
	Flags []string
	From  string
}

func (s Spec) String() string { return strings.Join(append(slices.Clone(s.Env), s.Flags...), " ") }

// FromSYAML reads the go build command the Serverless Devs file at path
// runs for pkg (./functions/NAME). GOOS and GOARCH are left out, and so is
// -o: the caller builds for the host, where it runs or inspects the binary.
func FromSYAML(path, pkg string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	for line := range strings.Lines(string(b)) {
		words, err := shellWords(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- run:")))
		if err != nil || !slices.Contains(words, "build") || words[len(words)-1] != pkg {
			continue
		}
		spec := Spec{From: path}
		i := 0
		for ; i < len(words) && strings.Contains(words[i], "="); i++ {
			if k, _, _ := strings.Cut(words[i], "="); k != "GOOS" && k != "GOARCH" {
				spec.Env = append(spec.Env, words[i])
			}
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
			continue
		}
		for j := i + 2; j < len(words)-1; j++ {
			if words[j] == "-o" {
				j++
				continue
			}
			spec.Flags = append(spec.Flags, words[j])
		}
		return spec, nil
	}
	return Spec{}, fmt.Errorf("%s has no go build of %s", path, pkg)
}

// Build compiles pkg (a path like ./functions/remain) into dir/name as s
// says, and returns the binary's path.
func (s Spec) Build(ctx context.Context, dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	args := append([]string{"build"}, s.Flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), s.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Modules lists the module paths the binary at path was built with, as
// `go version -m` prints them (its dep lines).
func Modules(ctx context.Context, path string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", path).Output()
	if err != nil {
		return nil, fmt.Errorf("go version -m %s: %w", path, err)
	}
	var mods []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "dep" {
			mods = append(mods, f[1])
		}
	}
	return mods, sc.Err()
}

// shellWords splits a command line as sh does for plain words, single and
// double quotes (no expansions).
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
