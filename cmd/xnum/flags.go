package main

import (
	"flag"
	"io"
)

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("xnum "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
