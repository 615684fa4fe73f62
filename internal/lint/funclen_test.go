package lint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// MaxFuncLines is the longest a function may be, counted from its func line
// to its closing brace, function literals inside it included (issue 17).
const MaxFuncLines = 120

// TestFuncLength fails for every function in the module, tests included,
// that is longer than MaxFuncLines: declared functions and methods, and
// function literals assigned at package level (var x = func() {...}).
func TestFuncLength(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	var offenders []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		found, err := longFuncs(root, path)
		offenders = append(offenders, found...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(offenders)
	for _, o := range offenders {
		t.Errorf("%s (max %d)", o, MaxFuncLines)
	}
}

// skipDir reports whether a directory holds no code of the module's own.
func skipDir(name string) bool {
	switch name {
	case "testdata", "vendor", "node_modules":
		return true
	}
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// longFuncs parses one file and describes each function in it that is too
// long as "file:line name N lines", the file relative to root.
func longFuncs(root, path string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return nil, err
	}
	var out []string
	check := func(name string, node ast.Node) {
		start, end := fset.Position(node.Pos()), fset.Position(node.End())
		if n := end.Line - start.Line + 1; n > MaxFuncLines {
			out = append(out, formatOffender(rel, start.Line, name, n))
		}
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			check(funcName(d), d)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				for i, v := range vs.Values {
					if lit, ok := v.(*ast.FuncLit); ok && i < len(vs.Names) {
						check(vs.Names[i].Name, lit)
					}
				}
			}
		}
	}
	return out, nil
}

// funcName is a function's name, with its receiver's type for a method.
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	typ := d.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr:
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + d.Name.Name
	}
	return d.Name.Name
}

func formatOffender(file string, line int, name string, n int) string {
	return fmt.Sprintf("%s:%d %s %d lines", file, line, name, n)
}

// moduleRoot is the directory holding go.mod, found upwards from the
// package's directory (where go test runs).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
