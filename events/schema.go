package events

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed schema/*.json
var schemaFiles embed.FS

// Schemas holds the JSON Schema (draft 2020-12) of every event, one file per
// CloudEvents type named after it without the "xnum." prefix, for example
// "order.requested.json". Each describes the whole envelope; its
// "#/$defs/data" is the data alone (for order.requested: the bare order).
func Schemas() fs.FS {
	sub, err := fs.Sub(schemaFiles, "schema")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// SchemaFile is the name of the schema file of event type typ in Schemas.
func SchemaFile(typ string) (string, error) {
	if SubjectOf(typ) == "" {
		return "", fmt.Errorf("events: unknown event type %q", typ)
	}
	return typ[len("xnum."):] + ".json", nil
}

// Schema returns the JSON Schema of event type typ.
func Schema(typ string) ([]byte, error) {
	name, err := SchemaFile(typ)
	if err != nil {
		return nil, err
	}
	return fs.ReadFile(Schemas(), name)
}
