// Package include holds pprofio.h, the public API of the C core.
//
// Like csrc, it embeds what it holds so that an edit to the header makes
// the go command rebuild internal/core, and so that `go mod vendor` keeps
// the folder.
package include

import _ "embed"

// Header is the text of pprofio.h.
//
//go:embed pprofio.h
var Header string
