package pprofio_test

import (
	"context"
	"log"

	"github.com/pprofio/pprofio"
)

// Configured by the deployment alone: with, for example,
//
//	PPROFIO_SERVICE_NAME=checkout
//	PPROFIO_INGEST_URL=https://api.pprofio.com
//	PPROFIO_API_KEY=...
//	PPROFIO_TAGS=env=prod,region=eu-west-1
//
// in the environment, an empty Config is enough; PPROFIO_ENABLED=false
// turns the agent off without a code change.
func Example_environment() {
	p, err := pprofio.New(pprofio.Config{})
	if err != nil {
		log.Fatal(err) // names the variable whose value is bad
	}
	if err := p.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer p.Stop()
}
