package symbolize

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// FileID names the contents of an ELF file: its GNU build ID (hex), else
// its Go build ID ("go:..."), else a hash of the whole file ("sha256:..."),
// so a binary found later can be checked to be the one that ran.
func FileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if id := buildID(ef); id != "" {
		return id, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// buildID reads the GNU build ID note, else Go's; "" without either.
func buildID(f *elf.File) string {
	var goID string
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		for len(data) >= 12 {
			bo := f.ByteOrder
			namesz, descsz, typ := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
			nameEnd := 12 + align4(namesz)
			descEnd := nameEnd + align4(descsz)
			if uint64(descEnd) > uint64(len(data)) || descEnd < nameEnd {
				break
			}
			name := bytes.TrimRight(data[12:12+namesz], "\x00")
			desc := data[nameEnd : nameEnd+descsz]
			switch {
			case string(name) == "GNU" && typ == 3: // NT_GNU_BUILD_ID
				return hex.EncodeToString(desc)
			case string(name) == "Go" && typ == 4: // Go's build ID note
				goID = "go:" + string(desc)
			}
			data = data[descEnd:]
		}
	}
	return goID
}

func align4(n uint32) uint32 { return (n + 3) &^ 3 }
