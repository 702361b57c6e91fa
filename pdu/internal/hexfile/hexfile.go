// Package hexfile reads the annotated hex dumps kept in pdu/testdata/golden: hex octets separated by
// blanks, "#" starting a comment that runs to the end of the line.
package hexfile

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Parse returns the octets of an annotated hex dump.
func Parse(src []byte) ([]byte, error) {
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		for _, tok := range strings.Fields(text) {
			b, err := hex.DecodeString(tok)
			if err != nil {
				return nil, fmt.Errorf("hexfile: line %d: %q: %w", line, tok, err)
			}
			out = append(out, b...)
		}
	}
	return out, sc.Err()
}

// Read parses the annotated hex dump in file name.
func Read(name string) ([]byte, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	b, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}
