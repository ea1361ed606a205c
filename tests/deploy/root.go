// root.go: minimal root file systems for chroot, made of a binary, the
// libraries `ldd` says it needs and those of the runtime packages.

package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Ldd returns the absolute paths of the shared libraries `ldd path` lists
// (the dynamic loader included, the kernel's vDSO left out). A library
// that is "not found" is an error.
func Ldd(path string) ([]string, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v\n%s", path, err, out)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[1] == "=>" && len(f) >= 3 && f[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s is not found", path, f[0])
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}

var sharedObject = regexp.MustCompile(`\.so(\.[0-9]+)*$`)

// PackageLibraries returns the shared libraries a Debian package installed
// (`dpkg -L`), by the names the dynamic loader looks for.
func PackageLibraries(pkg string) ([]string, error) {
	out, err := exec.Command("dpkg", "-L", pkg).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dpkg -L %s: %v\n%s", pkg, err, out)
	}
	var libs []string
	for _, p := range strings.Fields(string(out)) {
		if !sharedObject.MatchString(p) || !strings.Contains(p, "/lib") {
			continue
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			libs = append(libs, p)
		}
	}
	return libs, nil
}

// Root is a minimal root file system for chroot.
type Root struct {
	Dir   string
	Files []string // what was copied in, by its path inside the root
}

// NewRoot makes a root in dir holding the binary at /app, each library in
// libs and each library that one of them needs (by `ldd`), at the paths
// `ldd` gives, and an empty /data for the program to write in.
func NewRoot(dir, binary string, libs []string) (*Root, error) {
	r := &Root{Dir: dir}
	need, err := Ldd(binary)
	if err != nil {
		return nil, err
	}
	for _, l := range libs {
		deps, err := Ldd(l)
		if err != nil {
			return nil, err
		}
		need = append(need, l)
		need = append(need, deps...)
	}
	seen := map[string]bool{}
	for _, l := range need {
		if seen[l] {
			continue
		}
		seen[l] = true
		if err := r.Copy(l, l, 0o755); err != nil {
			return nil, err
		}
	}
	if err := r.Copy(binary, "/app", 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	sort.Strings(r.Files)
	return r, nil
}

// Copy copies the file src (following symbolic links) to dst inside the root.
func (r *Root) Copy(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	to := filepath.Join(r.Dir, dst)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		return err
	}
	r.Files = append(r.Files, dst)
	return nil
}

// Has reports whether a file of this base name was copied in.
func (r *Root) Has(base string) bool {
	for _, f := range r.Files {
		if filepath.Base(f) == base {
			return true
		}
	}
	return false
}

// Path is the host path of a path inside the root.
func (r *Root) Path(p string) string { return filepath.Join(r.Dir, p) }
