// Package e2e holds the end-to-end tests of pprofio: a real Profiler runs
// in the test process (the test binary is the profiled program) on a short
// cadence, and the profiles it leaves in OutputDir are parsed with
// github.com/google/pprof/profile. The tests are in _test.go files only;
// this module exists so that the parser never becomes a dependency of
// github.com/pprofio/pprofio itself.
//
// The process has one CPU profiler, so no two tests that start a Profiler
// with CPU profiles (or call pprof.StartCPUProfile) run in parallel.
package e2e
