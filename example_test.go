package pprofio_test

import (
	"context"
	"time"

	"github.com/pprofio/pprofio"
)

// The Quick Start of the README, unchanged. It is compiled with the tests
// so it keeps compiling; it has no Output comment, so it is not run.
func Example() {
	cfg := pprofio.Config{
		APIKey:      "your-api-key",
		IngestURL:   "https://api.pprofio.com",
		SampleRate:  60 * time.Second,
		ServiceName: "my-service",
		Tags:        map[string]string{"env": "prod"},
	}
	p, _ := pprofio.New(cfg)
	ctx := context.Background()
	p.Start(ctx)
	defer p.Stop()
}

// Keeping profiles on local disk, with a shorter cycle.
func Example_localStorage() {
	p, err := pprofio.New(pprofio.Config{
		ServiceName: "checkout",
		OutputDir:   "/var/lib/checkout/profiles",
		SampleRate:  30 * time.Second,
		CPUDuration: 5 * time.Second,
	})
	if err != nil {
		panic(err) // a *pprofio.ConfigError names the field
	}
	if err := p.Start(context.Background()); err != nil {
		panic(err)
	}
	defer p.Stop()
}
