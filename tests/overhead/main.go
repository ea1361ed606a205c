// Command overhead measures what pprofio costs a Go service, against no
// profiler and against pyroscope-go, on one machine in one run. See
// README.md beside this file.
//
//	cd tests/overhead && go run .                # the default run, < 10 min on 2 cores
//	go run . -rounds 12 -work 150000             # longer, tighter
//	go run . -compressed -rounds 20              # only the time-compressed cadence
package main

import "os"

func main() {
	// The harness runs this same program as its workers.
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		os.Exit(workerMain(os.Args[2:]))
	}
	os.Exit(harnessMain(os.Args[1:]))
}
