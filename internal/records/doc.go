// Package records makes delta heap profiles from the runtime's own
// records instead of writing, inflating and decoding a whole runtime/pprof
// profile each cycle: runtime.MemProfile's records (at runtime/pprof's
// stack depth) are read into reused buffers, each runtime bucket's stack
// is symbolized once, as runtime/pprof symbolizes it, into the core's
// tables (csrc/records.h), and each snapshot's values go to the core in
// one call, which subtracts the previous snapshot and writes the pprof.
//
// The runtime fills its records through the functions runtime/pprof
// itself uses (go:linkname, as pyroscope-go's godeltaprof does), whose
// record layout is Go-version specific: the package reads them only where
// its layout and its copy of runtime/pprof's rules were checked equal
// (Go 1.26, Linux, cgo); elsewhere Supported is false.
package records
