//go:build cgo

package core

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"testing"
)

func testPayloads(t *testing.T) map[string][]byte {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	random := make([]byte, 3<<20)
	rnd.Read(random)
	text := bytes.Repeat([]byte("runtime.mallocgc main.allocate main.main "), 50000)
	return map[string][]byte{
		"empty":  {},
		"byte":   {42},
		"text":   text,
		"random": random,
	}
}

func TestCoreGzipIsReadByCompressGzip(t *testing.T) {
	for name, want := range testPayloads(t) {
		gz, err := Gzip(want)
		if err != nil {
			t.Fatalf("%s: Gzip: %v", name, err)
		}
		r, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("%s: compress/gzip rejects the core's header: %v", name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: compress/gzip rejects the core's stream: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: round trip changed the bytes (%d in, %d out)", name, len(want), len(got))
		}
	}
}

func TestCoreGunzipReadsCompressGzip(t *testing.T) {
	for name, want := range testPayloads(t) {
		for _, level := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.BestCompression} {
			var buf bytes.Buffer
			w, _ := gzip.NewWriterLevel(&buf, level)
			w.Write(want)
			w.Close()
			got, err := Gunzip(buf.Bytes())
			if err != nil {
				t.Fatalf("%s/level %d: Gunzip: %v", name, level, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s/level %d: round trip changed the bytes", name, level)
			}
		}
	}
}

func TestCoreGunzipRejectsDamagedStreams(t *testing.T) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(bytes.Repeat([]byte("pprofio "), 1000))
	w.Close()
	good := buf.Bytes()
	cases := map[string][]byte{
		"not gzip":         []byte("this is not a gzip stream at all"),
		"truncated":        good[:len(good)/2],
		"no trailer":       good[:len(good)-4],
		"nothing":          {},
		"trailing garbage": append(append([]byte{}, good...), "junk"...),
	}
	for name, b := range cases {
		if _, err := Gunzip(b); err == nil {
			t.Errorf("%s: Gunzip accepted a damaged stream", name)
		}
	}
}
