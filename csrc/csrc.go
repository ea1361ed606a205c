// Package csrc holds the sources of the pprofio C core.
//
// The core is compiled by cgo as part of internal/core, whose core.c
// includes each file here. cgo does not notice edits to files it includes
// from another folder (golang/go#24355), so this package embeds the
// sources: an edit changes this package's compiled output, and that makes
// the go command rebuild internal/core. Being a package also keeps the
// folder in a consumer's vendor tree. The .c files carry `//go:build ignore`
// so the go command does not try to compile them here.
package csrc

import "embed"

// Sources are the C files and private headers of the core.
//
//go:embed *.c *.h
var Sources embed.FS
