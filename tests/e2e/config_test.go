package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pprofio/pprofio"
)

// TestConfigErrors: New rejects each bad field with a *ConfigError that
// names it, and accepts the good ones.
func TestConfigErrors(t *testing.T) {
	t.Parallel() // New only: no profiler runs
	dir := t.TempDir()
	regular := filepath.Join(dir, "a-file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	spoolTo := func(c *pprofio.Config, dir string) {
		c.IngestURL, c.APIKey, c.SpoolDir = "https://127.0.0.1:9", "k", dir
	}
	longKey := strings.Repeat("k", pprofio.MaxTagKeyLen+1)
	tagField := func(k string) string { return `Tags["` + k + `"]` }

	bad := []struct {
		name   string
		edit   func(*pprofio.Config)
		fields []string // the accepted values of ConfigError.Field
	}{
		{"empty ServiceName", func(c *pprofio.Config) { c.ServiceName = "" }, []string{"ServiceName"}},
		{"ServiceName with a space", func(c *pprofio.Config) { c.ServiceName = "my service" }, []string{"ServiceName"}},
		{"ServiceName with a slash", func(c *pprofio.Config) { c.ServiceName = "a/b" }, []string{"ServiceName"}},
		{"ServiceName dot-dot", func(c *pprofio.Config) { c.ServiceName = ".." }, []string{"ServiceName"}},
		{"ServiceName too long", func(c *pprofio.Config) {
			c.ServiceName = strings.Repeat("s", pprofio.MaxServiceNameLen+1)
		}, []string{"ServiceName"}},
		{"SampleRate 500ms", func(c *pprofio.Config) { c.SampleRate = 500 * time.Millisecond }, []string{"SampleRate"}},
		{"SampleRate negative", func(c *pprofio.Config) { c.SampleRate = -time.Second }, []string{"SampleRate"}},
		{"CPUDuration > SampleRate", func(c *pprofio.Config) {
			c.SampleRate, c.CPUDuration = 2*time.Second, 3*time.Second
		}, []string{"CPUDuration"}},
		{"CPUDuration negative", func(c *pprofio.Config) { c.CPUDuration = -time.Second }, []string{"CPUDuration"}},
		{"tag with empty key", func(c *pprofio.Config) { c.Tags = map[string]string{"": "v"} },
			[]string{"Tags", tagField("")}},
		{"tag with empty value", func(c *pprofio.Config) { c.Tags = map[string]string{"env": ""} },
			[]string{tagField("env")}},
		{"tag key too long", func(c *pprofio.Config) { c.Tags = map[string]string{longKey: "v"} },
			[]string{tagField(longKey)}},
		{"tag value too long", func(c *pprofio.Config) {
			c.Tags = map[string]string{"env": strings.Repeat("v", pprofio.MaxTagValueLen+1)}
		}, []string{tagField("env")}},
		{"control char in tag key", func(c *pprofio.Config) { c.Tags = map[string]string{"a\nb": "v"} },
			[]string{`Tags["a\nb"]`}},
		{"control char in tag value", func(c *pprofio.Config) { c.Tags = map[string]string{"env": "p\x00rod"} },
			[]string{tagField("env")}},
		{"too many tags", func(c *pprofio.Config) {
			c.Tags = map[string]string{}
			for i := 0; i <= pprofio.MaxTags; i++ {
				c.Tags[strings.Repeat("t", i+1)] = "v"
			}
		}, []string{"Tags"}},
		{"IngestURL http to a public host", func(c *pprofio.Config) {
			c.IngestURL, c.APIKey = "http://example.com", "key"
		}, []string{"IngestURL"}},
		{"IngestURL ftp", func(c *pprofio.Config) { c.IngestURL, c.APIKey = "ftp://x", "key" }, []string{"IngestURL"}},
		{"IngestURL with credentials", func(c *pprofio.Config) {
			c.IngestURL, c.APIKey = "https://user:pw@host", "key"
		}, []string{"IngestURL"}},
		{"IngestURL with a query", func(c *pprofio.Config) {
			c.IngestURL, c.APIKey = "https://host/?k=v", "key"
		}, []string{"IngestURL"}},
		{"IngestURL without APIKey", func(c *pprofio.Config) { c.IngestURL = "https://api.pprofio.com" },
			[]string{"APIKey"}},
		{"APIKey with a space", func(c *pprofio.Config) {
			c.IngestURL, c.APIKey = "https://api.pprofio.com", "a key"
		}, []string{"APIKey"}},
		{"neither IngestURL nor OutputDir", func(c *pprofio.Config) { c.OutputDir = "" },
			[]string{"IngestURL", "OutputDir"}},
		{"MaxBufferBytes 1000", func(c *pprofio.Config) { c.MaxBufferBytes = 1000 }, []string{"MaxBufferBytes"}},
		{"unknown profile type", func(c *pprofio.Config) { c.Profiles = []pprofio.ProfileType{"bogus"} },
			[]string{"Profiles"}},
		{"no profile type", func(c *pprofio.Config) { c.Profiles = []pprofio.ProfileType{} },
			[]string{"Profiles"}},
		{"OutputDir is a regular file", func(c *pprofio.Config) { c.OutputDir = regular }, []string{"OutputDir"}},
		{"OutputDir under a regular file", func(c *pprofio.Config) { c.OutputDir = filepath.Join(regular, "out") },
			[]string{"OutputDir"}},
		// /proc takes no new files, even from root (which mode bits do not stop).
		{"OutputDir a folder nothing can be written in", func(c *pprofio.Config) { c.OutputDir = "/proc" },
			[]string{"OutputDir"}},
		{"OutputDir that cannot be created", func(c *pprofio.Config) { c.OutputDir = "/proc/pprofio-out/x" },
			[]string{"OutputDir"}},
		{"SpoolDir is a regular file", func(c *pprofio.Config) { spoolTo(c, regular) }, []string{"SpoolDir"}},
		{"SpoolDir under a regular file", func(c *pprofio.Config) { spoolTo(c, filepath.Join(regular, "spool")) },
			[]string{"SpoolDir"}},
		{"SpoolDir a folder nothing can be written in", func(c *pprofio.Config) { spoolTo(c, "/proc") },
			[]string{"SpoolDir"}},
		{"SpoolDir that cannot be created", func(c *pprofio.Config) { spoolTo(c, "/proc/pprofio-spool") },
			[]string{"SpoolDir"}},
		{"StartJitter > SampleRate", func(c *pprofio.Config) {
			c.SampleRate, c.StartJitter = 2*time.Second, 3*time.Second
		}, []string{"StartJitter"}},
	}
	for _, tc := range bad {
		cfg := pprofio.Config{ServiceName: "svc", OutputDir: dir}
		tc.edit(&cfg)
		p, err := pprofio.New(cfg)
		if err == nil {
			p.Stop()
			t.Errorf("%s: New accepted it", tc.name)
			continue
		}
		var ce *pprofio.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v (%T), want a *pprofio.ConfigError", tc.name, err, err)
			continue
		}
		ok := false
		for _, f := range tc.fields {
			ok = ok || ce.Field == f
		}
		if !ok {
			t.Errorf("%s: ConfigError.Field = %q, want one of %q (%v)", tc.name, ce.Field, tc.fields, err)
		}
		if ce.Reason == "" || !strings.Contains(err.Error(), ce.Field) {
			t.Errorf("%s: the message %q does not name the field or give a reason", tc.name, err)
		}
	}

	good := []struct {
		name string
		cfg  pprofio.Config
	}{
		{"http to 127.0.0.1", pprofio.Config{IngestURL: "http://127.0.0.1:8080", APIKey: "k"}},
		{"http to localhost", pprofio.Config{IngestURL: "http://localhost", APIKey: "k"}},
		{"http to [::1]", pprofio.Config{IngestURL: "http://[::1]:9", APIKey: "k"}},
		{"https with a path", pprofio.Config{IngestURL: "https://api.pprofio.com/prefix/", APIKey: "k"}},
		{"OutputDir only", pprofio.Config{OutputDir: filepath.Join(dir, "not-yet")}},
		{"both outputs, all fields", pprofio.Config{
			IngestURL: "https://api.pprofio.com", APIKey: "k", OutputDir: dir,
			SampleRate: time.Second, CPUDuration: time.Second, StartJitter: time.Second,
			MaxBufferBytes: pprofio.MinMaxBufferBytes, Tags: map[string]string{"env": "prod", "región": "é"},
			Profiles: []pprofio.ProfileType{pprofio.ProfileCPU, pprofio.ProfileHeap, pprofio.ProfileCPU},
		}},
	}
	for _, tc := range good {
		cfg := tc.cfg
		cfg.ServiceName = "svc-1.a_b"
		p, err := pprofio.New(cfg)
		if err != nil {
			t.Errorf("%s: New: %v", tc.name, err)
			continue
		}
		if err := p.Stop(); err != nil {
			t.Errorf("%s: Stop without Start: %v", tc.name, err)
		}
	}
}
