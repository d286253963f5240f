package ratecard

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed examples/*.csv
var exampleFiles embed.FS

// Examples returns the example rate cards and market map shipped in examples/. They are EXAMPLES
// (see each file's header), for `convmeter dev`, tests and a first look; production loads the
// operator's own files with Load.
func Examples() (*Book, error) {
	files := map[string]string{}
	err := fs.WalkDir(exampleFiles, "examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := exampleFiles.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = string(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("example rate cards: %w", err)
	}
	return Parse(files)
}
