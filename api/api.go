// Package api holds the OpenAPI 3 document of the functions' HTTP contract,
// embedded so a server can publish it.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
