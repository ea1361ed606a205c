package pprofio

// env.go configures pprofio from the environment, as operators configure
// services: every Config field a deployment sets has a PPROFIO_* variable,
// New fills each field left at its zero value from it (a field set in code
// wins), and PPROFIO_ENABLED=false turns the agent into a no-op without a
// code change.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvEnabled is the variable that turns the agent off: with
// PPROFIO_ENABLED=false (or 0, f, FALSE, ...), New, Start and Stop succeed
// and do nothing.
const EnvEnabled = "PPROFIO_ENABLED"

// envVar binds a Config field to its variable. apply fills the field from
// v when the field is zero and reports whether it did; a bad v is an error
// whose text is the reason.
type envVar struct {
	name   string
	field  string
	secret bool // never quoted in an error
	apply  func(cfg *Config, v string) (bool, error)
}

func envString(name, field string, secret bool, f func(*Config) *string) envVar {
	return envVar{name, field, secret, func(cfg *Config, v string) (bool, error) {
		if p := f(cfg); *p == "" {
			*p = v
			return true, nil
		}
		return false, nil
	}}
}

func envDuration(name, field string, f func(*Config) *time.Duration) envVar {
	return envVar{name, field, false, func(cfg *Config, v string) (bool, error) {
		if p := f(cfg); *p == 0 {
			d, err := time.ParseDuration(v)
			if err != nil {
				return false, errors.New("not a duration such as 30s or 1m")
			}
			*p = d
			return true, nil
		}
		return false, nil
	}}
}

// envVars lists every variable New reads, besides EnvEnabled.
var envVars = []envVar{
	envString("PPROFIO_SERVICE_NAME", "ServiceName", false, func(c *Config) *string { return &c.ServiceName }),
	envString("PPROFIO_API_KEY", "APIKey", true, func(c *Config) *string { return &c.APIKey }),
	envString("PPROFIO_INGEST_URL", "IngestURL", false, func(c *Config) *string { return &c.IngestURL }),
	{"PPROFIO_TAGS", "Tags", false, applyTags},
	envDuration("PPROFIO_SAMPLE_RATE", "SampleRate", func(c *Config) *time.Duration { return &c.SampleRate }),
	envDuration("PPROFIO_CPU_DURATION", "CPUDuration", func(c *Config) *time.Duration { return &c.CPUDuration }),
	{"PPROFIO_PROFILES", "Profiles", false, applyProfiles},
	envString("PPROFIO_OUTPUT_DIR", "OutputDir", false, func(c *Config) *string { return &c.OutputDir }),
	envString("PPROFIO_SPOOL_DIR", "SpoolDir", false, func(c *Config) *string { return &c.SpoolDir }),
	envString("PPROFIO_CA_FILE", "CAFile", false, func(c *Config) *string { return &c.CAFile }),
	envString("PPROFIO_PYROSCOPE_URL", "PyroscopeURL", false, func(c *Config) *string { return &c.PyroscopeURL }),
	envString("PPROFIO_PYROSCOPE_USER", "PyroscopeUser", false, func(c *Config) *string { return &c.PyroscopeUser }),
	envString("PPROFIO_PYROSCOPE_PASSWORD", "PyroscopePassword", true,
		func(c *Config) *string { return &c.PyroscopePassword }),
	envString("PPROFIO_PYROSCOPE_TOKEN", "PyroscopeToken", true, func(c *Config) *string { return &c.PyroscopeToken }),
	envString("PPROFIO_PYROSCOPE_TENANT_ID", "PyroscopeTenantID", false,
		func(c *Config) *string { return &c.PyroscopeTenantID }),
}

// applyTags reads PPROFIO_TAGS, "k=v,k=v" (spaces around keys and values
// are trimmed; empty entries are ignored).
func applyTags(cfg *Config, v string) (bool, error) {
	if len(cfg.Tags) > 0 {
		return false, nil
	}
	tags := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch {
		case !ok:
			return false, fmt.Errorf("%q is not key=value", kv)
		case k == "":
			return false, fmt.Errorf("%q has an empty key", kv)
		case val == "":
			return false, fmt.Errorf("tag %q has an empty value", k)
		}
		if _, dup := tags[k]; dup {
			return false, fmt.Errorf("tag %q is given twice", k)
		}
		tags[k] = val
	}
	if len(tags) == 0 {
		return false, nil
	}
	cfg.Tags = tags
	return true, nil
}

// applyProfiles reads PPROFIO_PROFILES, e.g. "cpu,heap,goroutine".
func applyProfiles(cfg *Config, v string) (bool, error) {
	if cfg.Profiles != nil {
		return false, nil
	}
	var ps []ProfileType
	for _, name := range strings.Split(v, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if _, ok := coreTypes[ProfileType(name)]; !ok {
			return false, fmt.Errorf("unknown profile type %q (supported: cpu, heap, goroutine, mutex, block)", name)
		}
		ps = append(ps, ProfileType(name))
	}
	if len(ps) == 0 {
		return false, nil
	}
	cfg.Profiles = ps
	return true, nil
}

// envOrigin maps each Config field filled from the environment to its variable.
type envOrigin map[string]envVar

// applyEnv fills cfg's zero fields from lookup (os.LookupEnv) and reports
// whether the agent is enabled. An empty variable counts as unset.
func applyEnv(cfg Config, lookup func(string) (string, bool)) (Config, envOrigin, bool, error) {
	if v, _ := lookup(EnvEnabled); strings.TrimSpace(v) != "" {
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return cfg, nil, false, &ConfigError{EnvEnabled, fmt.Sprintf("%s=%q: not a boolean (true or false)", EnvEnabled, v)}
		}
		if !on {
			return cfg, nil, false, nil
		}
	}
	origin := envOrigin{}
	for _, ev := range envVars {
		v, _ := lookup(ev.name)
		if strings.TrimSpace(v) == "" {
			continue
		}
		applied, err := ev.apply(&cfg, v)
		if err != nil {
			return cfg, nil, false, ev.error(v, err.Error())
		}
		if applied {
			origin[ev.field] = ev
		}
	}
	return cfg, origin, true, nil
}

// error is a *ConfigError about this variable's value v.
func (ev envVar) error(v, reason string) *ConfigError {
	if ev.secret {
		return &ConfigError{ev.field, ev.name + ": " + reason}
	}
	return &ConfigError{ev.field, fmt.Sprintf("%s=%q: %s", ev.name, v, reason)}
}

// blame names the variable in a *ConfigError about a field that came
// from the environment ("Tags[\"k\"]" came from PPROFIO_TAGS).
func (o envOrigin) blame(err error) error {
	var ce *ConfigError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ce) {
		return err
	}
	field, _, _ := strings.Cut(ce.Field, "[")
	ev, ok := o[field]
	if !ok {
		return err
	}
	return &ConfigError{ce.Field, "from " + ev.name + ": " + ce.Reason}
}

// prepare is what New does before building anything: the environment,
// then the checks and defaults. enabled is false when PPROFIO_ENABLED
// turned the agent off; cfg is then returned as given. origin.blame names
// the variable in a later error about a field that came from it.
func prepare(cfg Config) (out Config, origin envOrigin, enabled bool, err error) {
	cfg, origin, enabled, err = applyEnv(cfg, os.LookupEnv)
	if err != nil || !enabled {
		return cfg, origin, enabled, err
	}
	cfg, err = normalize(cfg)
	if err == nil {
		err = checkPyroscope(&cfg)
	}
	return cfg, origin, true, origin.blame(err)
}
