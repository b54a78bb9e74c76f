package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkGet reads whole objects of adapter sizes from each store, next
// to the raw paths under them, so one run gives comparable MB/s:
//
//	ReadFile  os.ReadFile of the Dir's file (disk or page cache; allocates)
//	File      os.Open and io.ReadFull of that file into the reused buffer
//	Dir       Dir.Get of that file
//	TCP       the same bytes over one loopback TCP connection from a
//	          server process
//	HTTP      HTTP.Get from a local net/http server
//	S3        S3.Get from VersityGW on loopback (skipped with -short)
//
// Every case but ReadFile reads into one reused buffer, so File against
// Dir and TCP against S3 show what each store adds.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, mb := range []int{1, 10, 30} {
		n := mb << 20
		data := randBytes(n, uint64(mb))
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			d, err := NewDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Put(ctx, "adapter_model.safetensors", bytes.NewReader(data), int64(n)); err != nil {
				b.Fatal(err)
			}
			b.Run("ReadFile", func(b *testing.B) {
				p := filepath.Join(d.Root(), "adapter_model.safetensors")
				b.SetBytes(int64(n))
				for b.Loop() {
					got, err := os.ReadFile(p)
					if err != nil || len(got) != n {
						b.Fatal(len(got), err)
					}
				}
			})
			b.Run("File", func(b *testing.B) {
				p := filepath.Join(d.Root(), "adapter_model.safetensors")
				b.SetBytes(int64(n))
				for b.Loop() {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					if err := readExactly(f, buf); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
			})
			b.Run("Dir", func(b *testing.B) { benchStoreGet(b, d, buf) })
			b.Run("TCP", func(b *testing.B) { benchTCP(b, buf, uint64(mb)) })
			b.Run("HTTP", func(b *testing.B) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
				}))
				defer srv.Close()
				benchStoreGet(b, NewHTTP(srv.URL, srv.Client()), buf)
			})
			b.Run("S3", func(b *testing.B) {
				s := s3Server(b).newS3(b)
				if err := s.Put(ctx, "adapter_model.safetensors", bytes.NewReader(data), int64(n)); err != nil {
					b.Fatal(err)
				}
				benchStoreGet(b, s, buf)
			})
		})
	}
}

// benchStoreGet reads adapter_model.safetensors from s into buf.
func benchStoreGet(b *testing.B, s Store, buf []byte) {
	ctx := context.Background()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		rc, err := s.Get(ctx, "adapter_model.safetensors")
		if err != nil {
			b.Fatal(err)
		}
		if err := readExactly(rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// readExactly fills buf from r and checks that r ends there.
func readExactly(r io.Reader, buf []byte) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	var one [1]byte
	if n, err := r.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("object longer than %d bytes (%d, %v)", len(buf), n, err)
	}
	return nil
}

// tcpServerEnv, when set to "size:seed" in the environment of the test
// binary, makes TestMain serve randBytes(size, seed) on 127.0.0.1 instead
// of running tests: benchTCP starts it as a separate process, as
// VersityGW is, so the raw figure is not starved by sharing the
// benchmark's process.
const tcpServerEnv = "SWITCHYARD_STORE_TCP_SERVER"

// serveTCP is the server process: it prints its address, then writes
// the whole data to each connection for each byte it reads.
func serveTCP(spec string) {
	var size int
	var seed uint64
	if _, err := fmt.Sscanf(spec, "%d:%d", &size, &seed); err != nil {
		fmt.Fprintln(os.Stderr, "bad", tcpServerEnv, spec)
		os.Exit(2)
	}
	data := randBytes(size, seed)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			var req [1]byte
			for {
				if _, err := c.Read(req[:]); err != nil {
					return
				}
				if _, err := c.Write(data); err != nil {
					return
				}
			}
		}()
	}
}

// benchTCP reads len(buf) bytes per request over one 127.0.0.1
// connection to a server process: the floor under any loopback protocol.
func benchTCP(b *testing.B, buf []byte, seed uint64) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", tcpServerEnv, len(buf), seed))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("TCP server process: %v", err)
	}
	c, err := net.Dial("tcp", strings.TrimSpace(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := c.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
