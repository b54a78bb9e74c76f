package adapters

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/switchyard-ai/switchyard/adapters/store"
)

// startS3 starts a VersityGW S3 server (built by scripts/versitygw.sh, or
// at $SWITCHYARD_VERSITYGW) on loopback for the duration of tb, with one
// empty bucket, and returns the store options and the bucket. It skips
// when the binary is missing.
func startS3(tb testing.TB) (*store.Options, string) {
	tb.Helper()
	bin := os.Getenv("SWITCHYARD_VERSITYGW")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "switchyard", "bin", "versitygw")
		if c := os.Getenv("SWITCHYARD_CACHE"); c != "" {
			bin = filepath.Join(c, "bin", "versitygw")
		}
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Skipf("VersityGW not found (run scripts/versitygw.sh or set SWITCHYARD_VERSITYGW): %v", err)
	}
	dir := tb.TempDir()
	data, meta := filepath.Join(dir, "data"), filepath.Join(dir, "meta")
	os.Mkdir(data, 0o755)
	os.Mkdir(meta, 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const access, secret = "switchyard", "switchyard-secret-key"
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr,
		"--region", "us-east-1", "--quiet", "posix", "--sidecar", meta, data)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1"})
	if err != nil {
		tb.Fatal(err)
	}
	const bucket = "switchyard"
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		cancel()
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			tb.Fatalf("VersityGW on %s: %v", addr, err)
		}
	}
	return &store.Options{S3Endpoint: "http://" + addr, S3AccessKey: access, S3SecretKey: secret, S3Region: "us-east-1"}, bucket
}

// BenchmarkMissS3 measures the time to tier 0 from a registry whose blobs
// are in a real S3 server (VersityGW) on loopback, next to the raw GET
// throughput of the same objects.
func BenchmarkMissS3(b *testing.B) {
	opts, bucket := startS3(b)
	for _, mb := range []float64{1, 10, 30} {
		b.Run(fmt.Sprintf("%gMB", mb), func(b *testing.B) {
			missBench(b, mb, "s3://"+bucket+"/blobs-"+fmt.Sprint(mb), &RegistryOptions{Store: opts})
		})
	}
}

// TestRegistryS3 registers an adapter from S3 into a registry whose blobs
// are in S3, and loads it through a cache.
func TestRegistryS3(t *testing.T) {
	if testing.Short() {
		t.Skip("needs VersityGW")
	}
	opts, bucket := startS3(t)
	ctx := context.Background()
	src, _, err := store.Open(ctx, "s3://"+bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(fixtureAdapter(t, "llama_tiny", "r8_qv"), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Put(ctx, "incoming/r8_qv/"+f, bytesReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(ctx, t.TempDir(), fixtureConfig(t, "llama_tiny"), "llama_tiny",
		&RegistryOptions{Blobs: "s3://" + bucket + "/blobs", Store: opts, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v, err := r.Register(ctx, "a", "s3://"+bucket+"/incoming/r8_qv")
	if err != nil {
		t.Fatal(err)
	}
	if v.Rank != 8 {
		t.Errorf("rank %d", v.Rank)
	}
	c := newTestCache(t, r, Budgets{Tier0: 1 << 20}, nil)
	h, err := c.Acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if h.Adapter().MaxRank != 8 {
		t.Errorf("adapter rank %d", h.Adapter().MaxRank)
	}
	h.Release()
}
