// Package schemas embeds the JSON Schemas (draft 2020-12) of convmeter's wire types, one per wire
// name (message.status.v1.json, ...), and validates encoded records against them.
//
// The schemas describe the same contract as the events package's codec, for producers and
// consumers in other languages; tests in the events package keep the two in step. Go code can use
// Validate in its own tests to check that what it writes is what the contract says, for example
// every output of the window engine. It is a separate package so that the events package itself
// does not depend on a JSON Schema library.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.json
var files embed.FS

// FS returns the schema files, named "<wire name>.json".
func FS() fs.FS { return files }

// Types lists the wire names that have a schema, sorted.
func Types() []string {
	entries, _ := files.ReadDir(".") // an embedded directory always reads
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Schema returns the schema document of wire name t.
func Schema(t string) ([]byte, bool) {
	b, err := files.ReadFile(t + ".json")
	return b, err == nil
}

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

func compileAll() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		c.AssertContent()
		out := map[string]*jsonschema.Schema{}
		for _, t := range Types() {
			b, _ := Schema(t)
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", t, err)
				return
			}
			url := "https://convmeter.dev/schemas/" + t + ".json"
			if err := c.AddResource(url, doc); err != nil {
				compileErr = fmt.Errorf("schema %s: %w", t, err)
				return
			}
			sch, err := c.Compile(url)
			if err != nil {
				compileErr = fmt.Errorf("schema %s: %w", t, err)
				return
			}
			out[t] = sch
		}
		compiled = out
	})
	return compiled, compileErr
}

// Validate checks one encoded record against the schema its "type" names. It returns an error
// when the record is not JSON, names no type with a schema, or does not match the schema.
func Validate(record []byte) error {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(record, &head); err != nil {
		return fmt.Errorf("validate record: %w", err)
	}
	if head.Type == nil {
		return fmt.Errorf("validate record: no type")
	}
	return ValidateAs(*head.Type, record)
}

// ValidateAs checks one encoded record against the schema of wire name t.
func ValidateAs(t string, record []byte) error {
	all, err := compileAll()
	if err != nil {
		return err
	}
	sch, ok := all[t]
	if !ok {
		return fmt.Errorf("validate record: no schema for type %q", t)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(record))
	if err != nil {
		return fmt.Errorf("validate %s record: %w", t, err)
	}
	if err := sch.Validate(doc); err != nil {
		return fmt.Errorf("validate %s record: %w", t, err)
	}
	return nil
}
