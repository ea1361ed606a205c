package pprofio

// config.go: New's validation of Config and its defaults. The Go side owns
// both; the C core checks again only what it relies on itself.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// normalize checks cfg and fills in its defaults.
func normalize(cfg Config) (Config, error) {
	if err := checkServiceName(cfg.ServiceName); err != nil {
		return cfg, err
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = DefaultSampleRate
	}
	if cfg.SampleRate < MinSampleRate {
		return cfg, &ConfigError{"SampleRate", fmt.Sprintf("%v is under the minimum of %v", cfg.SampleRate, MinSampleRate)}
	}
	if cfg.CPUDuration == 0 {
		cfg.CPUDuration = min(DefaultCPUDuration, cfg.SampleRate/6)
	}
	if cfg.CPUDuration <= 0 || cfg.CPUDuration > cfg.SampleRate {
		return cfg, &ConfigError{"CPUDuration", fmt.Sprintf("%v is not in (0, SampleRate=%v]", cfg.CPUDuration, cfg.SampleRate)}
	}
	if cfg.StartJitter == 0 {
		cfg.StartJitter = cfg.SampleRate / 10
	}
	if cfg.StartJitter > cfg.SampleRate {
		return cfg, &ConfigError{"StartJitter", fmt.Sprintf("%v is longer than SampleRate=%v", cfg.StartJitter, cfg.SampleRate)}
	}
	if cfg.MaxBufferBytes == 0 {
		cfg.MaxBufferBytes = DefaultMaxBufferBytes
	}
	if cfg.MaxBufferBytes < MinMaxBufferBytes {
		return cfg, &ConfigError{"MaxBufferBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxBufferBytes, MinMaxBufferBytes)}
	}
	if cfg.MaxSpanBytes == 0 {
		cfg.MaxSpanBytes = DefaultMaxSpanBytes
	}
	if cfg.MaxSpanBytes < MinMaxSpanBytes {
		return cfg, &ConfigError{"MaxSpanBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxSpanBytes, MinMaxSpanBytes)}
	}
	profiles, err := checkProfiles(cfg.Profiles)
	if err != nil {
		return cfg, err
	}
	cfg.Profiles = profiles
	if err := checkRates(&cfg); err != nil {
		return cfg, err
	}
	if err := checkTags(cfg.Tags); err != nil {
		return cfg, err
	}
	if cfg.IngestURL == "" && cfg.OutputDir == "" && cfg.PyroscopeURL == "" {
		return cfg, &ConfigError{"IngestURL", "neither IngestURL, PyroscopeURL nor OutputDir is set: profiles would have nowhere to go"}
	}
	if cfg.IngestURL != "" {
		if err := checkIngestURL(cfg.IngestURL); err != nil {
			return cfg, err
		}
		if err := checkAPIKey(cfg.APIKey); err != nil {
			return cfg, err
		}
	}
	if cfg.IngestURL != "" || cfg.PyroscopeURL != "" {
		if err := checkDelivery(&cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.OutputDir != "" {
		dir, err := filepath.Abs(cfg.OutputDir)
		if err != nil {
			return cfg, &ConfigError{"OutputDir", err.Error()}
		}
		if err := checkWritableDir(dir); err != nil {
			return cfg, &ConfigError{"OutputDir", err.Error()}
		}
		cfg.OutputDir = dir
	}
	return cfg, nil
}

// checkWritableDir says why files could not be written under dir: the
// nearest folder on its path that exists (dir itself, or the parent it
// will be made in) must be a directory that takes a new file. A probe file
// is created and removed there, since root passes any mode-bit check.
func checkWritableDir(dir string) error {
	at := dir
	for {
		fi, err := os.Stat(at)
		if err == nil && fi.IsDir() {
			break
		}
		if err == nil && at == dir {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		if err == nil {
			return fmt.Errorf("cannot create %s: %s is not a directory", dir, at)
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(at) == at {
			return fmt.Errorf("cannot create %s: %v", dir, err)
		}
		at = filepath.Dir(at)
	}
	f, err := os.CreateTemp(at, ".pprofio-probe-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %v", at, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func checkServiceName(s string) error {
	switch {
	case s == "":
		return &ConfigError{"ServiceName", "required"}
	case len(s) > MaxServiceNameLen:
		return &ConfigError{"ServiceName", fmt.Sprintf("longer than %d bytes", MaxServiceNameLen)}
	case s[0] == '.':
		return &ConfigError{"ServiceName", "must not start with '.'"}
	}
	for _, r := range s {
		if !(r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return &ConfigError{"ServiceName", fmt.Sprintf("%q: only ASCII letters, digits, '.', '_' and '-' are allowed", s)}
		}
	}
	return nil
}

func checkProfiles(ps []ProfileType) ([]ProfileType, error) {
	if ps == nil {
		return []ProfileType{ProfileCPU, ProfileHeap}, nil
	}
	if len(ps) == 0 {
		return nil, &ConfigError{"Profiles", "empty: select at least one profile type (nil means the default)"}
	}
	seen := map[ProfileType]bool{}
	out := make([]ProfileType, 0, len(ps))
	for _, t := range ps {
		if _, ok := coreTypes[t]; !ok {
			return nil, &ConfigError{"Profiles", fmt.Sprintf("unknown profile type %q (supported: cpu, heap, goroutine, mutex, block)", t)}
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// checkRates fills in and checks the sampling rates and the leak rule.
func checkRates(cfg *Config) error {
	fields := []struct {
		name string
		v    *int
		def  int
		max  int
	}{
		{"MutexProfileFraction", &cfg.MutexProfileFraction, DefaultMutexProfileFraction, 1 << 30},
		{"BlockProfileRate", &cfg.BlockProfileRate, DefaultBlockProfileRate, min(1<<40, math.MaxInt)},
		{"LeakWindows", &cfg.LeakWindows, DefaultLeakWindows, 1000},
		{"LeakMinGrowthPercent", &cfg.LeakMinGrowthPercent, DefaultLeakMinGrowthPercent, 1 << 20},
		{"LeakMinGrowth", &cfg.LeakMinGrowth, DefaultLeakMinGrowth, 1 << 30},
	}
	for _, f := range fields {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 || *f.v > f.max {
			return &ConfigError{f.name, fmt.Sprintf("%d is not in [1, %d]", *f.v, f.max)}
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

func checkTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return &ConfigError{"Tags", fmt.Sprintf("%d tags; at most %d are allowed", len(tags), MaxTags)}
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same bad tag every time
	for _, k := range keys {
		v := tags[k]
		field := fmt.Sprintf("Tags[%q]", k)
		switch {
		case k == "":
			return &ConfigError{"Tags", "a tag key is empty"}
		case len(k) > MaxTagKeyLen:
			return &ConfigError{field, fmt.Sprintf("key longer than %d bytes", MaxTagKeyLen)}
		case !utf8.ValidString(k) || hasControl(k):
			return &ConfigError{field, "key has control characters or is not UTF-8"}
		case v == "":
			return &ConfigError{field, "value is empty"}
		case len(v) > MaxTagValueLen:
			return &ConfigError{field, fmt.Sprintf("value longer than %d bytes", MaxTagValueLen)}
		case !utf8.ValidString(v) || hasControl(v):
			return &ConfigError{field, "value has control characters or is not UTF-8"}
		}
	}
	return nil
}

func checkIngestURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &ConfigError{"IngestURL", "not a URL: " + err.Error()}
	}
	if u.Host == "" {
		return &ConfigError{"IngestURL", fmt.Sprintf("%q has no host", raw)}
	}
	if u.User != nil {
		return &ConfigError{"IngestURL", "must not carry credentials; use APIKey"}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return &ConfigError{"IngestURL", "must be a base URL without query or fragment"}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return &ConfigError{"IngestURL", "http:// is allowed only to a loopback address; use https://"}
	default:
		return &ConfigError{"IngestURL", fmt.Sprintf("scheme %q: only https:// is allowed", u.Scheme)}
	}
}

// checkDelivery fills in and checks the upload fields.
func checkDelivery(cfg *Config) error {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"StopTimeout", &cfg.StopTimeout, DefaultStopTimeout},
		{"ConnectTimeout", &cfg.ConnectTimeout, DefaultConnectTimeout},
		{"RequestTimeout", &cfg.RequestTimeout, DefaultRequestTimeout},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Millisecond {
			return &ConfigError{d.name, fmt.Sprintf("%v is under 1ms", *d.v)}
		}
	}
	if cfg.MaxSpoolBytes == 0 {
		cfg.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if cfg.MaxSpoolBytes < MinMaxSpoolBytes {
		return &ConfigError{"MaxSpoolBytes", fmt.Sprintf("%d is under the minimum of %d", cfg.MaxSpoolBytes, MinMaxSpoolBytes)}
	}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return &ConfigError{"CAFile", err.Error()}
		}
		if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
			return &ConfigError{"CAFile", cfg.CAFile + " holds no PEM certificate"}
		}
	}
	if cfg.SpoolDir != "" {
		dir, err := filepath.Abs(cfg.SpoolDir)
		if err != nil {
			return &ConfigError{"SpoolDir", err.Error()}
		}
		cfg.SpoolDir = dir
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkAPIKey(key string) error {
	if key == "" {
		return &ConfigError{"APIKey", "required when IngestURL is set"}
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) || !utf8.ValidString(key) {
		return &ConfigError{"APIKey", "has spaces or control characters"}
	}
	return nil
}
