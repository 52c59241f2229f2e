//go:build !nonats

package config

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Options are the connection options the configuration implies. The files
// are read when the connection is made, so a rotated credential takes
// effect at the next connection. (A binary built with -tags nonats links no
// NATS client, and has no use for them.)
func (n NATS) Options() []nats.Option {
	var opts []nats.Option
	switch {
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(n.Creds))
	case n.NKey != "":
		opts = append(opts, nkeyFromSeed(n.NKey))
	}
	if n.CA != "" {
		opts = append(opts, nats.RootCAs(n.CA))
	}
	if n.Cert != "" {
		opts = append(opts, nats.ClientCert(n.Cert, n.Key))
	}
	return opts
}

// nkeyFromSeed signs in with the nkey whose seed is in file; a file that can
// no longer be read fails the connection with that error.
func nkeyFromSeed(file string) nats.Option {
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		return func(*nats.Options) error { return fmt.Errorf("%s: %w", NATSNKey, err) }
	}
	return opt
}

// checkNKeySeed checks that file holds an nkey seed.
func checkNKeySeed(file string) error {
	_, err := nats.NkeyOptionFromSeed(file)
	return err
}
