package pprofio

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// pyroscopeConfig is a Config that passes normalize and checkPyroscope.
func pyroscopeConfig() Config {
	return Config{
		ServiceName:  "checkout",
		OutputDir:    "/tmp/pprofio-unused",
		PyroscopeURL: "https://profiles-prod-001.grafana.net",
		Tags:         map[string]string{"env": "prod", "k8s.namespace": "shop", "version": "v1.2.3 (build 7)"},
	}
}

// checkBoth runs the checks New runs: normalize, then checkPyroscope.
func checkBoth(cfg Config) error {
	cfg, err := normalize(cfg)
	if err != nil {
		return err
	}
	return checkPyroscope(&cfg)
}

// Configurations Pyroscope accepts pass: basic auth, a bearer token,
// neither, a tenant, a path prefix, http:// to loopback.
func TestPyroscopeAcceptsWhatPyroscopeAccepts(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no auth":      func(*Config) {},
		"basic auth":   func(c *Config) { c.PyroscopeUser, c.PyroscopePassword = "123456", "glc_eyJvIjoiMSJ9==" },
		"bearer":       func(c *Config) { c.PyroscopeToken = "eyJhbGciOi.J9.x-y_z" },
		"tenant":       func(c *Config) { c.PyroscopeTenantID = "team-a_1.prod!*'()" },
		"path prefix":  func(c *Config) { c.PyroscopeURL = "https://gw.example/pyroscope/" },
		"loopback":     func(c *Config) { c.PyroscopeURL = "http://127.0.0.1:4040" },
		"27 tags":      func(c *Config) { c.Tags = manyTags(MaxPyroscopeTags) },
		"label chars":  func(c *Config) { c.Tags = map[string]string{"_a": "x", "A.b_9": "ü ✓"} },
		"service name": func(c *Config) { c.ServiceName = "a.b_c-D9" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := pyroscopeConfig()
			edit(&cfg)
			if err := checkBoth(cfg); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func manyTags(n int) map[string]string {
	tags := map[string]string{}
	for i := 0; i < n; i++ {
		tags[fmt.Sprintf("t%d", i)] = "v"
	}
	return tags
}

// What Pyroscope would refuse (or what cannot work) is a *ConfigError
// naming the field, before anything is sent.
func TestPyroscopeRefusesWhatPyroscopeRefuses(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
		words string
	}{
		{"ftp", func(c *Config) { c.PyroscopeURL = "ftp://p.example" }, "PyroscopeURL", "scheme"},
		{"no host", func(c *Config) { c.PyroscopeURL = "https://" }, "PyroscopeURL", "no host"},
		{"plain http", func(c *Config) { c.PyroscopeURL = "http://p.example" }, "PyroscopeURL", "loopback"},
		{"query", func(c *Config) { c.PyroscopeURL = "https://p.example/?a=1" }, "PyroscopeURL", "query"},
		{"credentials in URL", func(c *Config) { c.PyroscopeURL = "https://u:p@p.example" }, "PyroscopeURL", "credentials"},
		{"user alone", func(c *Config) { c.PyroscopeUser = "1" }, "PyroscopePassword", "required"},
		{"password alone", func(c *Config) { c.PyroscopePassword = "pw" }, "PyroscopeUser", "required"},
		{"basic and bearer", func(c *Config) { c.PyroscopeUser, c.PyroscopePassword, c.PyroscopeToken = "1", "pw", "t" },
			"PyroscopeToken", "not both"},
		{"colon in user", func(c *Config) { c.PyroscopeUser, c.PyroscopePassword = "a:b", "pw" }, "PyroscopeUser", "':'"},
		{"newline in token", func(c *Config) { c.PyroscopeToken = "t\nX-Evil: 1" }, "PyroscopeToken", "control"},
		{"tenant space", func(c *Config) { c.PyroscopeTenantID = "a b" }, "PyroscopeTenantID", "not allowed"},
		{"tenant slash", func(c *Config) { c.PyroscopeTenantID = "a/b" }, "PyroscopeTenantID", "not allowed"},
		{"tenant dots", func(c *Config) { c.PyroscopeTenantID = ".." }, "PyroscopeTenantID", "not a tenant"},
		{"tenant long", func(c *Config) { c.PyroscopeTenantID = strings.Repeat("a", 151) }, "PyroscopeTenantID", "150"},
		{"28 tags", func(c *Config) { c.Tags = manyTags(MaxPyroscopeTags + 1) }, "Tags", "at most 27"},
		{"dash in key", func(c *Config) { c.Tags = map[string]string{"k8s-ns": "x"} }, `Tags["k8s-ns"]`, "'-'"},
		{"digit first", func(c *Config) { c.Tags = map[string]string{"1st": "x"} }, `Tags["1st"]`, "digit"},
		{"reserved", func(c *Config) { c.Tags = map[string]string{"__name__": "x"} }, `Tags["__name__"]`, "reserved"},
		{"service_name tag", func(c *Config) { c.Tags = map[string]string{"service_name": "x"} }, `Tags["service_name"]`,
			"itself"},
		{"collision", func(c *Config) { c.Tags = map[string]string{"a.b": "1", "a_b": "2"} }, `Tags["a_b"]`, `"a.b"`},
		{"unicode key", func(c *Config) { c.Tags = map[string]string{"région": "x"} }, `Tags["région"]`, "not allowed"},
		{"token without URL", func(c *Config) { c.PyroscopeURL, c.PyroscopeToken = "", "t" }, "PyroscopeToken",
			"without PyroscopeURL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := pyroscopeConfig()
			c.edit(&cfg)
			err := checkBoth(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if ce.Field != c.field || !strings.Contains(ce.Reason, c.words) {
				t.Errorf("got %v; want Field %q and a reason with %q", err, c.field, c.words)
			}
		})
	}
}

// Tags that only the pprofio service would take are fine while
// PyroscopeURL is unset.
func TestPyroscopeRulesOnlyWithPyroscope(t *testing.T) {
	cfg := pyroscopeConfig()
	cfg.PyroscopeURL = ""
	cfg.Tags = map[string]string{"k8s-ns": "x", "__x": "y"}
	if err := checkBoth(cfg); err != nil {
		t.Fatal(err)
	}
}
