//go:build cgo

package pprofio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// clearEnv unsets (sets empty, which counts as unset) every variable New
// reads, so the tests see only what they set, and points the default
// SpoolDir at a temp folder.
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvEnabled, "")
	for _, ev := range envVars {
		t.Setenv(ev.name, "")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
}

// pemFile writes a file that CAFile's check accepts.
func pemFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envCase is one variable, a value for it, what the field must hold after
// New read it, and a different value to set in code.
type envCase struct {
	name  string
	value string
	want  func(Config) any // the field
	wantV any
	code  func(*Config) // sets the field in code to codeV
	codeV any
	// base sets the other variables this one needs to make a valid Config.
	base map[string]string
}

func envCases(t *testing.T) []envCase {
	out := t.TempDir()
	ca, ca2 := pemFile(t), pemFile(t)
	ingest := map[string]string{"PPROFIO_INGEST_URL": "https://ingest.example", "PPROFIO_API_KEY": "k1"}
	pyro := map[string]string{"PPROFIO_PYROSCOPE_URL": "https://pyroscope.example"}
	return []envCase{
		{name: "PPROFIO_SERVICE_NAME", value: "from-env", want: func(c Config) any { return c.ServiceName }, wantV: "from-env",
			code: func(c *Config) { c.ServiceName = "from-code" }, codeV: "from-code"},
		{name: "PPROFIO_API_KEY", value: "env-key", want: func(c Config) any { return c.APIKey }, wantV: "env-key",
			code: func(c *Config) { c.APIKey = "code-key" }, codeV: "code-key",
			base: map[string]string{"PPROFIO_INGEST_URL": "https://ingest.example"}},
		{name: "PPROFIO_INGEST_URL", value: "https://env.example", want: func(c Config) any { return c.IngestURL },
			wantV: "https://env.example", code: func(c *Config) { c.IngestURL = "https://code.example" },
			codeV: "https://code.example", base: map[string]string{"PPROFIO_API_KEY": "k"}},
		{name: "PPROFIO_TAGS", value: " env = prod ,region=eu-west-1,", want: func(c Config) any { return c.Tags },
			wantV: map[string]string{"env": "prod", "region": "eu-west-1"},
			code:  func(c *Config) { c.Tags = map[string]string{"team": "a"} }, codeV: map[string]string{"team": "a"}},
		{name: "PPROFIO_SAMPLE_RATE", value: "2m", want: func(c Config) any { return c.SampleRate }, wantV: 2 * time.Minute,
			code: func(c *Config) { c.SampleRate = 30 * time.Second }, codeV: 30 * time.Second},
		{name: "PPROFIO_CPU_DURATION", value: "3s", want: func(c Config) any { return c.CPUDuration }, wantV: 3 * time.Second,
			code: func(c *Config) { c.CPUDuration = 5 * time.Second }, codeV: 5 * time.Second},
		{name: "PPROFIO_PROFILES", value: "cpu, Heap,mutex,,block,goroutine", want: func(c Config) any { return c.Profiles },
			wantV: []ProfileType{ProfileCPU, ProfileHeap, ProfileMutex, ProfileBlock, ProfileGoroutine},
			code:  func(c *Config) { c.Profiles = []ProfileType{ProfileGoroutine} }, codeV: []ProfileType{ProfileGoroutine}},
		{name: "PPROFIO_OUTPUT_DIR", value: out, want: func(c Config) any { return c.OutputDir }, wantV: out,
			code: func(c *Config) { c.OutputDir = out + "/code" }, codeV: out + "/code", base: ingest},
		{name: "PPROFIO_SPOOL_DIR", value: out + "/spool-env", want: func(c Config) any { return c.SpoolDir },
			wantV: out + "/spool-env", code: func(c *Config) { c.SpoolDir = out + "/spool-code" },
			codeV: out + "/spool-code", base: ingest},
		{name: "PPROFIO_CA_FILE", value: ca, want: func(c Config) any { return c.CAFile }, wantV: ca,
			code: func(c *Config) { c.CAFile = ca2 }, codeV: ca2, base: ingest},
		{name: "PPROFIO_PYROSCOPE_URL", value: "https://env.pyroscope", want: func(c Config) any { return c.PyroscopeURL },
			wantV: "https://env.pyroscope", code: func(c *Config) { c.PyroscopeURL = "https://code.pyroscope" },
			codeV: "https://code.pyroscope"},
		{name: "PPROFIO_PYROSCOPE_USER", value: "123456", want: func(c Config) any { return c.PyroscopeUser },
			wantV: "123456", code: func(c *Config) { c.PyroscopeUser = "654321" }, codeV: "654321",
			base: map[string]string{"PPROFIO_PYROSCOPE_URL": "https://p.example", "PPROFIO_PYROSCOPE_PASSWORD": "pw"}},
		{name: "PPROFIO_PYROSCOPE_PASSWORD", value: "glc_env", want: func(c Config) any { return c.PyroscopePassword },
			wantV: "glc_env", code: func(c *Config) { c.PyroscopePassword = "glc_code" }, codeV: "glc_code",
			base: map[string]string{"PPROFIO_PYROSCOPE_URL": "https://p.example", "PPROFIO_PYROSCOPE_USER": "1"}},
		{name: "PPROFIO_PYROSCOPE_TOKEN", value: "tok-env", want: func(c Config) any { return c.PyroscopeToken },
			wantV: "tok-env", code: func(c *Config) { c.PyroscopeToken = "tok-code" }, codeV: "tok-code", base: pyro},
		{name: "PPROFIO_PYROSCOPE_TENANT_ID", value: "team-a", want: func(c Config) any { return c.PyroscopeTenantID },
			wantV: "team-a", code: func(c *Config) { c.PyroscopeTenantID = "team-b" }, codeV: "team-b", base: pyro},
	}
}

// prepareEnv runs what New runs on cfg with env set (after clearEnv) and
// with ServiceName and OutputDir from the environment unless env says.
func prepareEnv(t *testing.T, cfg Config, env map[string]string) (Config, error) {
	t.Helper()
	clearEnv(t)
	t.Setenv("PPROFIO_SERVICE_NAME", "svc")
	t.Setenv("PPROFIO_OUTPUT_DIR", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	got, _, enabled, err := prepare(cfg)
	if !enabled {
		t.Fatalf("prepare says disabled")
	}
	return got, err
}

// Every variable fills its field of a Config{} in which the field is zero.
func TestEnvFillsEachZeroField(t *testing.T) {
	for _, c := range envCases(t) {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{c.name: c.value}
			for k, v := range c.base {
				env[k] = v
			}
			got, err := prepareEnv(t, Config{}, env)
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if v := c.want(got); !reflect.DeepEqual(v, c.wantV) {
				t.Errorf("%s=%q gave %#v, want %#v", c.name, c.value, v, c.wantV)
			}
		})
	}
}

// A field set in code wins over its variable.
func TestEnvFieldSetInCodeWins(t *testing.T) {
	for _, c := range envCases(t) {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{c.name: c.value}
			for k, v := range c.base {
				env[k] = v
			}
			var cfg Config
			c.code(&cfg)
			got, err := prepareEnv(t, cfg, env)
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if v := c.want(got); !reflect.DeepEqual(v, c.codeV) {
				t.Errorf("with %s=%q and the field set in code, got %#v, want the code's %#v", c.name, c.value, v, c.codeV)
			}
		})
	}
}

// A Config{} with only the environment set runs: profiles land in the
// OutputDir the environment names, of the types it names.
func TestEnvOnlyConfigRuns(t *testing.T) {
	clearEnv(t)
	out := t.TempDir()
	t.Setenv("PPROFIO_SERVICE_NAME", "env-only")
	t.Setenv("PPROFIO_OUTPUT_DIR", out)
	t.Setenv("PPROFIO_SAMPLE_RATE", "1s")
	t.Setenv("PPROFIO_CPU_DURATION", "100ms")
	t.Setenv("PPROFIO_PROFILES", "heap,goroutine")
	t.Setenv("PPROFIO_TAGS", "env=test")
	p, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}) with the environment: %v", err)
	}
	if p.cfg.SampleRate != time.Second || p.cfg.CPUDuration != 100*time.Millisecond {
		t.Errorf("SampleRate %v, CPUDuration %v: want the environment's 1s, 100ms", p.cfg.SampleRate, p.cfg.CPUDuration)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"heap", "goroutine"} {
		files, _ := filepath.Glob(filepath.Join(out, "env-only", typ, "*.pb.gz"))
		if len(files) == 0 {
			t.Errorf("no %s profile in %s", typ, out)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(out, "env-only", "cpu", "*")); len(files) != 0 {
		t.Errorf("CPU profiles written though PPROFIO_PROFILES leaves CPU out: %v", files)
	}
}

// PPROFIO_ENABLED=false: New, Start and Stop succeed and do nothing, even
// for a Config that would not be valid.
func TestEnvDisabledDoesNothing(t *testing.T) {
	for _, v := range []string{"false", "0", "FALSE", "f"} {
		t.Run(v, func(t *testing.T) {
			clearEnv(t)
			out := t.TempDir()
			t.Setenv(EnvEnabled, v)
			t.Setenv("PPROFIO_OUTPUT_DIR", out)
			t.Setenv("PPROFIO_SAMPLE_RATE", "not-a-duration")
			p, err := New(Config{StartJitter: -1})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if err := p.Start(context.Background()); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if err := p.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if err := p.Stop(); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
			if s := p.Stats(); s != (Stats{}) {
				t.Errorf("Stats of a disabled profiler: %+v", s)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a disabled profiler wrote into OutputDir: %v", entries)
			}
		})
	}
	t.Run("true", func(t *testing.T) {
		clearEnv(t)
		t.Setenv(EnvEnabled, "true")
		if _, err := New(Config{}); err == nil {
			t.Fatal("PPROFIO_ENABLED=true with an empty Config: New succeeded, want the usual ConfigError")
		}
	})
}

// Every bad value is a *ConfigError that names the variable (and never
// quotes a secret).
func TestEnvBadValues(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)
	ingest := map[string]string{"PPROFIO_INGEST_URL": "https://ingest.example", "PPROFIO_API_KEY": "k"}
	pyro := map[string]string{"PPROFIO_PYROSCOPE_URL": "https://pyroscope.example"}
	cases := []struct {
		name, value string
		field       string
		base        map[string]string
		secret      bool
	}{
		{"PPROFIO_ENABLED", "maybe", EnvEnabled, nil, false},
		{"PPROFIO_SERVICE_NAME", "has space", "ServiceName", nil, false},
		{"PPROFIO_SERVICE_NAME", ".hidden", "ServiceName", nil, false},
		{"PPROFIO_API_KEY", "secret with space", "APIKey", map[string]string{"PPROFIO_INGEST_URL": "https://i.example"}, true},
		{"PPROFIO_INGEST_URL", "ftp://ingest.example", "IngestURL", map[string]string{"PPROFIO_API_KEY": "k"}, false},
		{"PPROFIO_INGEST_URL", "http://ingest.example", "IngestURL", map[string]string{"PPROFIO_API_KEY": "k"}, false},
		{"PPROFIO_TAGS", "env", "Tags", nil, false},
		{"PPROFIO_TAGS", "=prod", "Tags", nil, false},
		{"PPROFIO_TAGS", "env=", "Tags", nil, false},
		{"PPROFIO_TAGS", "env=a,env=b", "Tags", nil, false},
		{"PPROFIO_TAGS", "env=\x01", `Tags["env"]`, nil, false},
		{"PPROFIO_SAMPLE_RATE", "60", "SampleRate", nil, false},
		{"PPROFIO_SAMPLE_RATE", "soon", "SampleRate", nil, false},
		{"PPROFIO_SAMPLE_RATE", "100ms", "SampleRate", nil, false},
		{"PPROFIO_CPU_DURATION", "x", "CPUDuration", nil, false},
		{"PPROFIO_CPU_DURATION", "2h", "CPUDuration", nil, false},
		{"PPROFIO_CPU_DURATION", "-1s", "CPUDuration", nil, false},
		{"PPROFIO_PROFILES", "cpu,disk", "Profiles", nil, false},
		{"PPROFIO_OUTPUT_DIR", notDir, "OutputDir", nil, false},
		{"PPROFIO_CA_FILE", notDir + ".missing", "CAFile", ingest, false},
		{"PPROFIO_CA_FILE", notDir, "CAFile", ingest, false},
		{"PPROFIO_SPOOL_DIR", notDir, "SpoolDir", ingest, false},
		{"PPROFIO_PYROSCOPE_URL", "http://pyroscope.example", "PyroscopeURL", nil, false},
		{"PPROFIO_PYROSCOPE_URL", "https://u:p@pyroscope.example", "PyroscopeURL", nil, false},
		{"PPROFIO_PYROSCOPE_USER", "a:b", "PyroscopeUser",
			map[string]string{"PPROFIO_PYROSCOPE_URL": "https://p.example", "PPROFIO_PYROSCOPE_PASSWORD": "pw"}, false},
		{"PPROFIO_PYROSCOPE_PASSWORD", "pass word", "PyroscopePassword",
			map[string]string{"PPROFIO_PYROSCOPE_URL": "https://p.example", "PPROFIO_PYROSCOPE_USER": "1"}, true},
		{"PPROFIO_PYROSCOPE_TOKEN", "tok en", "PyroscopeToken", pyro, true},
		{"PPROFIO_PYROSCOPE_TOKEN", "token", "PyroscopeToken",
			map[string]string{"PPROFIO_PYROSCOPE_URL": "https://p.example", "PPROFIO_PYROSCOPE_USER": "1",
				"PPROFIO_PYROSCOPE_PASSWORD": "pw"}, false},
		{"PPROFIO_PYROSCOPE_TENANT_ID", "team a", "PyroscopeTenantID", pyro, false},
		{"PPROFIO_PYROSCOPE_TENANT_ID", "team-a", "PyroscopeTenantID", nil, false}, // without a URL
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("PPROFIO_SERVICE_NAME", "svc")
			t.Setenv("PPROFIO_OUTPUT_DIR", t.TempDir())
			for k, v := range c.base {
				t.Setenv(k, v)
			}
			t.Setenv(c.name, c.value)
			p, err := New(Config{})
			if err == nil {
				p.Stop()
				t.Fatalf("New succeeded")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %T %v, want a *ConfigError", err, err)
			}
			if ce.Field != c.field {
				t.Errorf("Field = %q, want %q (%v)", ce.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), c.name) {
				t.Errorf("%q does not name %s", err, c.name)
			}
			t.Log(err)
			if c.secret && strings.Contains(err.Error(), c.value) {
				t.Errorf("%q quotes the secret value", err)
			}
		})
	}
}
