package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// newDist returns the file system of [Dist] derived from the sources in
// src. It does no I/O: the first Open reads src.
func newDist(src fs.FS) *dist { return &dist{src: src} }

// dist is a read-only file system in memory, built from the sources once.
type dist struct {
	src  fs.FS
	once sync.Once
	// Set by build, then only read.
	files map[string][]byte   // path → contents
	dirs  map[string][]string // directory → names of its entries, sorted
	err   error
}

var (
	_ fs.ReadFileFS = (*dist)(nil)
	_ fs.ReadDirFS  = (*dist)(nil)
)

// assetName is the name under which an asset is served: its name with the
// first 12 hexadecimal digits of the SHA-256 of data before the extension.
func assetName(name string, data []byte) string {
	sum := sha256.Sum256(data)
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
}

// build reads the sources, lays out the files and lists the directories
// above them.
func (d *dist) build() {
	d.files, d.dirs = map[string][]byte{}, map[string][]string{".": nil}
	if d.err = d.buildFiles(); d.err != nil {
		return
	}
	for name := range d.files {
		for p := name; p != "."; p = path.Dir(p) {
			if dir := path.Dir(p); !slices.Contains(d.dirs[dir], path.Base(p)) {
				d.dirs[dir] = append(d.dirs[dir], path.Base(p))
			}
		}
	}
	for _, names := range d.dirs {
		slices.Sort(names)
	}
}

func (d *dist) buildFiles() error {
	entries, err := fs.ReadDir(d.src, ".")
	if err != nil {
		return err
	}
	manifest := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(d.src, e.Name())
		if err != nil {
			return err
		}
		p := "assets/" + assetName(e.Name(), data)
		d.files[p] = data
		manifest[e.Name()] = p
	}
	templates, err := fs.ReadDir(d.src, "templates")
	if err != nil {
		return err
	}
	for _, e := range templates {
		if e.IsDir() {
			continue
		}
		data, err := fs.ReadFile(d.src, "templates/"+e.Name())
		if err != nil {
			return err
		}
		d.files["templates/"+e.Name()] = data
	}
	b, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	d.files["manifest.json"] = append(b, '\n')
	return nil
}

// Open opens a file or directory of the UI.
func (d *dist) Open(name string) (fs.File, error) {
	if err := d.check("open", name); err != nil {
		return nil, err
	}
	if data, ok := d.files[name]; ok {
		return &file{info: info{name: path.Base(name), size: int64(len(data))}, r: bytes.NewReader(data)}, nil
	}
	if _, ok := d.dirs[name]; ok {
		entries, _ := d.ReadDir(name)
		return &dir{info: info{name: path.Base(name), dir: true}, entries: entries}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// ReadFile returns a copy of a file's contents.
func (d *dist) ReadFile(name string) ([]byte, error) {
	if err := d.check("read", name); err != nil {
		return nil, err
	}
	data, ok := d.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return bytes.Clone(data), nil
}

// ReadDir returns a directory's entries, sorted by name.
func (d *dist) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := d.check("readdir", name); err != nil {
		return nil, err
	}
	names, ok := d.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	entries := make([]fs.DirEntry, len(names))
	for i, n := range names {
		p := path.Join(name, n)
		fi := info{name: n, size: int64(len(d.files[p]))}
		if _, ok := d.dirs[p]; ok {
			fi = info{name: n, dir: true}
		}
		entries[i] = fs.FileInfoToDirEntry(fi)
	}
	return entries, nil
}

// check builds the files the first time and validates name.
func (d *dist) check(op, name string) error {
	d.once.Do(d.build)
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if d.err != nil {
		return &fs.PathError{Op: op, Path: name, Err: d.err}
	}
	return nil
}

// info describes a file or directory of a dist.
type info struct {
	name string
	size int64
	dir  bool
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// file is an open file of a dist.
type file struct {
	info info
	r    *bytes.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *file) Close() error               { return nil }

// Seek and ReadAt let http.ServeContent serve ranges of a file.
func (f *file) Seek(offset int64, whence int) (int64, error) { return f.r.Seek(offset, whence) }
func (f *file) ReadAt(b []byte, off int64) (int, error)      { return f.r.ReadAt(b, off) }

// dir is an open directory of a dist.
type dir struct {
	info    info
	entries []fs.DirEntry
	off     int // off is how many entries ReadDir has returned
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dir) Close() error               { return nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir returns the next n entries, or all that are left when n ≤ 0, as
// fs.ReadDirFile says.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	left := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return left, nil
	}
	if len(left) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(left))
	d.off += n
	return left[:n], nil
}
