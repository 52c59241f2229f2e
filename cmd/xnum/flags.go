package main

import (
	"flag"
	"io"
	"strings"

	"github.com/xnum-dev/xnum/pkg/provider/emulator/fault"
)

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("xnum "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// repeated collects a flag given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// faultFlags collects repeated --fault flags into the emulator's fault set;
// a spec fault.Parse refuses is a flag error.
type faultFlags struct {
	specs []string
	set   *fault.Set
}

func newFaultFlags() *faultFlags { return &faultFlags{set: fault.NewSet(1)} }

func (f *faultFlags) String() string { return strings.Join(f.specs, " ") }

func (f *faultFlags) Set(spec string) error {
	action, ft, err := fault.Parse(spec)
	if err != nil {
		return err
	}
	f.set.Set(action, ft)
	f.specs = append(f.specs, spec)
	return nil
}
