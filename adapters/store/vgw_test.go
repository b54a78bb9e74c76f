package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 tests run against a real VersityGW server (S3 over a POSIX
// directory) started on 127.0.0.1 by the first test that needs it and
// stopped by TestMain.

const vgwHelp = "run scripts/versitygw.sh to build it, or set SWITCHYARD_VERSITYGW to its path; go test -short skips the S3 tests"

// versityGW is a running server.
type versityGW struct {
	endpoint       string // 127.0.0.1:port
	access, secret string
	cmd            *exec.Cmd
	dir            string
	log            *bytes.Buffer
	done           chan struct{} // closed when cmd has exited
}

var (
	vgwOnce    sync.Once
	vgwServer  *versityGW
	vgwErr     error
	vgwBuckets atomic.Int64
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(tcpServerEnv); spec != "" {
		serveTCP(spec) // the benchmark's raw TCP server process
		return
	}
	code := m.Run()
	if vgwServer != nil {
		vgwServer.stop()
	}
	os.Exit(code)
}

// versityGWPath finds the server binary: $SWITCHYARD_VERSITYGW, else the
// cache scripts/versitygw.sh fills.
func versityGWPath() (string, error) {
	if p := os.Getenv("SWITCHYARD_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SWITCHYARD_VERSITYGW=%s: %v", p, err)
		}
		return p, nil
	}
	cache := os.Getenv("SWITCHYARD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "switchyard")
	}
	p := filepath.Join(cache, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("VersityGW not found at %s", p)
	}
	return p, nil
}

// s3Server returns the shared server, starting it on first use. Without
// -short a missing binary fails the test.
func s3Server(tb testing.TB) *versityGW {
	tb.Helper()
	if testing.Short() {
		tb.Skip("S3 tests need VersityGW; skipped with -short")
	}
	vgwOnce.Do(func() { vgwServer, vgwErr = startVersityGW() })
	if vgwErr != nil {
		tb.Fatalf("S3 test server: %v\n%s", vgwErr, vgwHelp)
	}
	return vgwServer
}

func startVersityGW() (*versityGW, error) {
	bin, err := versityGWPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "switchyard-vgw-")
	if err != nil {
		return nil, err
	}
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	os.Mkdir(data, 0o755)
	os.Mkdir(meta, 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	g := &versityGW{endpoint: addr, access: "switchyard", secret: "switchyard-secret-key", dir: dir, log: new(bytes.Buffer), done: make(chan struct{})}
	// The metadata goes to a side directory so the server works on file
	// systems without extended attributes (tmpfs, overlayfs).
	g.cmd = exec.Command(bin, "--access", g.access, "--secret", g.secret, "--port", addr,
		"--region", "us-east-1", "--keep-alive", "--quiet", "posix", "--sidecar", meta, data)
	g.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	setPdeathsig(g.cmd)
	if err := g.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	go func() { g.cmd.Wait(); close(g.done) }()
	client, err := g.client()
	if err != nil {
		g.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return g, nil
		}
		select {
		case <-g.done:
			g.stop()
			return nil, fmt.Errorf("%s exited: %v\n%s", bin, g.cmd.ProcessState, g.log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("%s did not answer on %s within 30s: %v\n%s", bin, addr, err, g.log)
		}
	}
}

func (g *versityGW) client() (*minio.Client, error) {
	return minio.New(g.endpoint, &minio.Options{Creds: credentials.NewStaticV4(g.access, g.secret, ""), Region: "us-east-1"})
}

func (g *versityGW) stop() {
	if g.cmd.Process != nil {
		g.cmd.Process.Signal(os.Interrupt)
		select {
		case <-g.done:
		case <-time.After(5 * time.Second):
			g.cmd.Process.Kill()
			<-g.done
		}
	}
	os.RemoveAll(g.dir)
}

// options returns Options for the server.
func (g *versityGW) options() *Options {
	return &Options{S3Endpoint: "http://" + g.endpoint, S3AccessKey: g.access, S3SecretKey: g.secret}
}

// newBucket creates an empty bucket with a fresh name.
func (g *versityGW) newBucket(tb testing.TB) string {
	tb.Helper()
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("test-%d-%s", vgwBuckets.Add(1), hex.EncodeToString(rnd[:]))
	c, err := g.client()
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// newS3 returns an S3 store for a new, empty bucket.
func (g *versityGW) newS3(tb testing.TB) *S3 {
	tb.Helper()
	s, err := NewS3(context.Background(), "", g.newBucket(tb), g.options())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// bucketDir returns where the server keeps a bucket's objects.
func (g *versityGW) bucketDir(bucket string) string {
	return filepath.Join(g.dir, "data", strings.TrimPrefix(bucket, "/"))
}
