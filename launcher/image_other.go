//go:build !amd64

package launcher

var image []byte
