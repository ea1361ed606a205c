package pprofio

// pyroscope.go checks the Config fields of the Grafana Pyroscope
// destination the way a Pyroscope server checks a push, so that a name or
// tag it would refuse is a *ConfigError at New, not a batch refused
// (HTTP 400) on every cycle.

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"
)

// Pyroscope's own limits on a series (its defaults: 30 label names per
// series, names up to 1024 bytes, values up to 2048; tenant IDs up to 150
// bytes).
const (
	// MaxPyroscopeTags is how many Tags a series can carry beside the three
	// labels pprofio sets (__name__, service_name, __delta__).
	MaxPyroscopeTags     = 30 - 3
	maxPyroscopeTenantID = 150
)

// pyroscopeReserved are label names pprofio sets on every series itself.
var pyroscopeReserved = map[string]bool{"service_name": true}

// checkPyroscope checks the Pyroscope fields of a normalized cfg (Tags and
// ServiceName already checked by normalize). Nothing is checked when
// PyroscopeURL is empty, except that credentials without a URL are refused.
func checkPyroscope(cfg *Config) error {
	if cfg.PyroscopeURL == "" {
		for _, f := range []struct{ name, v string }{
			{"PyroscopeUser", cfg.PyroscopeUser}, {"PyroscopePassword", cfg.PyroscopePassword},
			{"PyroscopeToken", cfg.PyroscopeToken}, {"PyroscopeTenantID", cfg.PyroscopeTenantID},
		} {
			if f.v != "" {
				return &ConfigError{f.name, "set without PyroscopeURL"}
			}
		}
		return nil
	}
	if err := checkBaseURL("PyroscopeURL", cfg.PyroscopeURL, "PyroscopeUser and PyroscopePassword"); err != nil {
		return err
	}
	if err := checkPyroscopeAuth(cfg); err != nil {
		return err
	}
	if err := checkTenantID(cfg.PyroscopeTenantID); err != nil {
		return err
	}
	if err := checkPyroscopeServiceName(cfg.ServiceName); err != nil {
		return err
	}
	return checkPyroscopeTags(cfg.Tags)
}

// checkBaseURL applies IngestURL's rules to another base URL; a path
// prefix is allowed (a server behind a reverse proxy).
func checkBaseURL(field, raw, credentials string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return &ConfigError{field, "not a URL: " + err.Error()}
	case u.Host == "":
		return &ConfigError{field, fmt.Sprintf("%q has no host", raw)}
	case u.User != nil:
		return &ConfigError{field, "must not carry credentials; use " + credentials}
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return &ConfigError{field, "must be a base URL without query or fragment"}
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return &ConfigError{field, "http:// is allowed only to a loopback address; use https://"}
	}
	return &ConfigError{field, fmt.Sprintf("scheme %q: only https:// is allowed", u.Scheme)}
}

// checkPyroscopeAuth: basic auth (user and password together) or a bearer
// token, or neither; values that cannot travel in an HTTP header are refused.
func checkPyroscopeAuth(cfg *Config) error {
	user, pass, token := cfg.PyroscopeUser, cfg.PyroscopePassword, cfg.PyroscopeToken
	switch {
	case (user == "") != (pass == ""):
		if user == "" {
			return &ConfigError{"PyroscopeUser", "required with PyroscopePassword (HTTP basic auth)"}
		}
		return &ConfigError{"PyroscopePassword", "required with PyroscopeUser (HTTP basic auth)"}
	case token != "" && user != "":
		return &ConfigError{"PyroscopeToken", "set with PyroscopeUser: use basic auth or a bearer token, not both"}
	case strings.ContainsRune(user, ':'):
		return &ConfigError{"PyroscopeUser", "must not contain ':' (HTTP basic auth)"}
	}
	for _, f := range []struct{ name, v string }{
		{"PyroscopeUser", user}, {"PyroscopePassword", pass}, {"PyroscopeToken", token},
	} {
		if strings.ContainsFunc(f.v, func(r rune) bool { return r <= ' ' || r == 0x7f }) || !utf8.ValidString(f.v) {
			return &ConfigError{f.name, "has spaces or control characters"}
		}
	}
	return nil
}

// checkTenantID applies the tenant ID rules of Pyroscope (those of Grafana
// Mimir and Loki): up to 150 bytes of letters, digits and !-_.*'(), and
// not "." or "..".
func checkTenantID(id string) error {
	if id == "" {
		return nil
	}
	if len(id) > maxPyroscopeTenantID {
		return &ConfigError{"PyroscopeTenantID", fmt.Sprintf("longer than %d bytes", maxPyroscopeTenantID)}
	}
	if id == "." || id == ".." {
		return &ConfigError{"PyroscopeTenantID", fmt.Sprintf("%q is not a tenant ID", id)}
	}
	for _, r := range id {
		if !isASCIIAlnum(r) && !strings.ContainsRune("!-_.*'()", r) {
			return &ConfigError{"PyroscopeTenantID", fmt.Sprintf("%q: character %q is not allowed "+
				"(letters, digits and !-_.*'() are)", id, r)}
		}
	}
	return nil
}

func isASCIIAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// checkPyroscopeServiceName: Pyroscope takes letters, digits and -._/ in a
// service name. ServiceName's own rule is narrower; this keeps the two
// from drifting apart unnoticed.
func checkPyroscopeServiceName(s string) error {
	for _, r := range s {
		if !isASCIIAlnum(r) && !strings.ContainsRune("-._/", r) {
			return &ConfigError{"ServiceName", fmt.Sprintf("%q: Pyroscope does not accept %q in a service name", s, r)}
		}
	}
	return nil
}

// checkPyroscopeTags: each tag becomes a label. Pyroscope takes label
// names of letters, digits, '_' and '.', not starting with a digit, and
// turns '.' into '_' (so "a.b" and "a_b" would collide); names starting
// with "__" are its own, and service_name is set by pprofio. Values are
// UTF-8 (normalize has checked them).
func checkPyroscopeTags(tags map[string]string) error {
	if len(tags) > MaxPyroscopeTags {
		return &ConfigError{"Tags", fmt.Sprintf("%d tags; Pyroscope takes at most %d beside the labels pprofio sets",
			len(tags), MaxPyroscopeTags)}
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, k := range keys {
		field := fmt.Sprintf("Tags[%q]", k)
		if err := pyroscopeLabelName(k); err != "" {
			return &ConfigError{field, "not a Pyroscope label name: " + err}
		}
		norm := strings.ReplaceAll(k, ".", "_")
		if other, dup := seen[norm]; dup {
			return &ConfigError{field, fmt.Sprintf("Pyroscope reads it as %q, as it reads %q", norm, other)}
		}
		seen[norm] = k
	}
	return nil
}

// pyroscopeLabelName says why k is not a label name Pyroscope accepts, or "".
func pyroscopeLabelName(k string) string {
	switch {
	case k == "":
		return "empty"
	case strings.HasPrefix(k, "__"):
		return "names starting with \"__\" are reserved"
	case pyroscopeReserved[k]:
		return "pprofio sets " + k + " itself"
	case k[0] >= '0' && k[0] <= '9':
		return "it starts with a digit"
	}
	for _, r := range k {
		if !isASCIIAlnum(r) && r != '_' && r != '.' {
			return fmt.Sprintf("character %q is not allowed (letters, digits, '_' and '.' are)", r)
		}
	}
	return ""
}
