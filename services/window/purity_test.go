package window

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// The engine is pure (style.md habit 3): no clock, no randomness, no I/O, no logging in its
// non-test sources.
func TestEngineIsPure(t *testing.T) {
	forbidden := map[string]string{
		"time.Now": "reads the wall clock", "time.Since": "reads the wall clock", "time.Until": "reads the wall clock",
		"time.Sleep": "waits on the wall clock", "time.After": "waits on the wall clock", "time.Tick": "waits on the wall clock",
	}
	forbiddenImports := []string{"math/rand", "crypto/rand", "log", "log/slog", "net", "os/exec", "github.com/segmentio/kafka-go", "github.com/redis/go-redis/v9"}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			for _, bad := range forbiddenImports {
				if strings.Trim(imp.Path.Value, `"`) == bad {
					t.Errorf("%s imports %s", name, bad)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok {
				if why, bad := forbidden[id.Name+"."+sel.Sel.Name]; bad {
					t.Errorf("%s: %s.%s %s", fset.Position(sel.Pos()), id.Name, sel.Sel.Name, why)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
