package launcher

import _ "embed"

// launcher_amd64.bin is generated from launcher.c by "make generate".
//
//go:embed launcher_amd64.bin
var image []byte
