package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
)

// colour tells whether the console log written to w may use ANSI colours: only on a terminal, and
// not when NO_COLOR is set to anything (https://no-color.org) or TERM is "dumb". Logs piped to a
// file, journald or a container runtime stay plain text.
func colour(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
