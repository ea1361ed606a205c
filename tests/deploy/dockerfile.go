// Package deploy checks the deployment story of the README (Deploying) and
// of examples/deploy/Dockerfile without a container engine: it builds the
// binary the way the Dockerfile's build stage does, then runs it with
// chroot in minimal roots assembled from `ldd`'s list and the runtime
// stage's packages, one with libcurl and one without.
package deploy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Dockerfile is what the tests read from a multi-stage Dockerfile.
type Dockerfile struct {
	BuildPackages   []string // apt-get install in the first stage
	BuildEnv        []string // NAME=value before `go build`
	BuildArgs       []string // the arguments of `go build`, with -o as written
	RuntimeImage    string   // the last stage's FROM
	RuntimePackages []string // apt-get install in the last stage
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd  string // FROM, RUN, ...
	args string
}

func readInstructions(path string) ([]instruction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out, sc.Err()
}

// ParseDockerfile reads the build and runtime stages of path.
func ParseDockerfile(path string) (*Dockerfile, error) {
	ins, err := readInstructions(path)
	if err != nil {
		return nil, err
	}
	d := &Dockerfile{}
	stage := -1
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			stage++
			d.RuntimeImage = strings.Fields(in.args)[0]
			d.RuntimePackages = nil
		case "RUN":
			for _, part := range strings.Split(in.args, "&&") {
				words := strings.Fields(part)
				if pkgs, ok := aptInstall(words); ok {
					if stage == 0 {
						d.BuildPackages = append(d.BuildPackages, pkgs...)
					} else {
						d.RuntimePackages = append(d.RuntimePackages, pkgs...)
					}
				}
				if env, args, ok := goBuild(words); ok && stage == 0 {
					d.BuildEnv, d.BuildArgs = env, args
				}
			}
		}
	}
	if stage < 1 {
		return nil, fmt.Errorf("%s: want a build stage and a runtime stage, found %d stage(s)", path, stage+1)
	}
	if d.BuildArgs == nil {
		return nil, fmt.Errorf("%s: the build stage runs no `go build`", path)
	}
	return d, nil
}

// aptInstall returns the packages of `apt-get install [options] pkg...`.
func aptInstall(words []string) ([]string, bool) {
	if len(words) < 2 || words[0] != "apt-get" {
		return nil, false
	}
	i := 1
	for i < len(words) && strings.HasPrefix(words[i], "-") {
		i++
	}
	if i >= len(words) || words[i] != "install" {
		return nil, false
	}
	var pkgs []string
	for _, w := range words[i+1:] {
		if !strings.HasPrefix(w, "-") {
			pkgs = append(pkgs, w)
		}
	}
	return pkgs, true
}

// goBuild returns the environment and the arguments of `[NAME=v...] go build args...`.
func goBuild(words []string) (env, args []string, ok bool) {
	i := 0
	for i < len(words) && strings.Contains(words[i], "=") {
		i++
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		return nil, nil, false
	}
	return words[:i], words[i+2:], true
}

// WithOutput returns BuildArgs with the -o value replaced by out.
func (d *Dockerfile) WithOutput(out string) ([]string, error) {
	args := append([]string(nil), d.BuildArgs...)
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = out
			return args, nil
		}
		if strings.HasPrefix(a, "-o=") {
			args[i] = "-o=" + out
			return args, nil
		}
	}
	return nil, fmt.Errorf("go build %s: no -o", strings.Join(d.BuildArgs, " "))
}
