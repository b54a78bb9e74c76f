package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-ai/switchyard/adapters"
	"github.com/switchyard-ai/switchyard/engine"
	"github.com/switchyard-ai/switchyard/model"
	"github.com/switchyard-ai/switchyard/server"
)

// serveOptions configure a server started by startServer.
type serveOptions struct {
	modelPath       string
	name            string // the base model's API name; "" derives it from modelPath
	addr            string
	adapters        []string // NAME=URI
	registryDir     string   // "" means a temporary directory
	jobsDir         string   // fine-tuning jobs and files; "" means a temporary directory
	ftWorkers       int      // fine-tuning jobs training at once (0: 1)
	ftThreads       int      // threads per fine-tuning job (0: 1)
	allowOnDemand   bool
	maxRequestBytes int64
	sched           engine.SchedulerOptions
	kvDType         kvCacheDType
	tier0, tier1    int64
	log             *slog.Logger
}

// runningServer is a server started by startServer.
type runningServer struct {
	URL     string // http://host:port
	Name    string // the base model's name
	http    *http.Server
	srv     *server.Server
	cache   *adapters.Cache
	ln      net.Listener
	cancel  context.CancelFunc // cancels the requests and the scheduler
	closers []func()
	served  chan error
	sched   chan error
}

// modelName derives a base model's API name from its path: the file name
// without .gguf, or the directory's name (its parent's for a directory
// called "model", as in fixtures/NAME/model).
func modelName(path string) string {
	path = filepath.Clean(path)
	name := strings.TrimSuffix(filepath.Base(path), ".gguf")
	if name == "model" {
		if parent := filepath.Base(filepath.Dir(path)); parent != "." && parent != "/" {
			name = parent
		}
	}
	return name
}

// startServer loads the model, opens the registry, registers the
// adapters, starts the scheduler and listens on o.addr.
func startServer(ctx context.Context, o serveOptions) (_ *runningServer, err error) {
	rs := &runningServer{served: make(chan error, 1), sched: make(chan error, 1)}
	defer func() {
		if err != nil {
			rs.closeAll()
		}
	}()
	m, err := model.Load(o.modelPath, nil)
	if err != nil {
		return nil, err
	}
	rs.closers = append(rs.closers, func() { m.Close() })
	o.kvDType.apply(m)
	tok, err := engine.LoadTokenizer(m, o.modelPath)
	if err != nil {
		return nil, err
	}
	rs.Name = o.name
	if rs.Name == "" {
		rs.Name = modelName(o.modelPath)
	}
	if err := adapters.ValidName(rs.Name); err != nil {
		return nil, fmt.Errorf("serve: --name %q: %w", rs.Name, err)
	}
	regDir := o.registryDir
	if regDir == "" {
		if regDir, err = os.MkdirTemp("", "switchyard-registry-*"); err != nil {
			return nil, err
		}
		rs.closers = append(rs.closers, func() { os.RemoveAll(regDir) })
	}
	reg, err := adapters.Open(ctx, regDir, &m.Config, rs.Name, &adapters.RegistryOptions{Logger: o.log})
	if err != nil {
		return nil, err
	}
	rs.closers = append(rs.closers, func() { reg.Close() })
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cache, err := adapters.NewCache(reg, adapters.Budgets{Tier0: o.tier0, Tier1: o.tier1}, &adapters.CacheOptions{Metrics: metrics, Logger: o.log})
	if err != nil {
		return nil, err
	}
	rs.closers = append(rs.closers, func() { cache.Close() })
	rs.cache = cache
	for _, a := range o.adapters {
		name, uri, ok := strings.Cut(a, "=")
		if !ok || name == "" || uri == "" {
			return nil, fmt.Errorf("serve: --adapter %q: want NAME=URI", a)
		}
		// A kept registry (--registry) already has what an earlier run
		// registered; the same source is not registered again.
		if vs := reg.Versions(name); len(vs) > 0 && vs[len(vs)-1].Source == uri {
			o.log.Info("adapter already registered", "adapter", vs[len(vs)-1].Key(), "source", uri)
			continue
		}
		v, err := reg.Register(ctx, name, uri)
		if err != nil {
			return nil, err
		}
		o.log.Info("adapter registered", "adapter", v.Key(), "source", uri)
	}

	o.sched.Logger = o.log
	sched := engine.NewScheduler(m, tok, o.sched)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs.cancel = cancel
	go func() { rs.sched <- sched.Run(runCtx) }()

	jobsDir := o.jobsDir
	if jobsDir == "" && tok != nil {
		if jobsDir, err = os.MkdirTemp("", "switchyard-jobs-*"); err != nil {
			cancel()
			<-rs.sched
			return nil, err
		}
		rs.closers = append(rs.closers, func() { os.RemoveAll(jobsDir) })
	}
	if tok == nil {
		jobsDir = "" // fine-tuning reads text with the tokenizer
	}
	srv, err := server.New(server.Config{Model: m, Tokenizer: tok, BaseName: rs.Name, Registry: reg, Cache: cache,
		Scheduler: sched, AllowOnDemand: o.allowOnDemand, MaxRequestBytes: o.maxRequestBytes, Logger: o.log, Metrics: metrics,
		JobsDir: jobsDir, FinetuneWorkers: o.ftWorkers, FinetuneThreads: o.ftThreads})
	if err != nil {
		cancel()
		<-rs.sched
		return nil, err
	}
	rs.srv = srv
	// The fine-tuning jobs stop before the model and registry close.
	rs.closers = append(rs.closers, func() { srv.Close() })
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		cancel()
		<-rs.sched
		return nil, err
	}
	rs.ln = ln
	rs.URL = "http://" + ln.Addr().String()
	rs.http = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return runCtx },
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
	}
	go func() { rs.served <- rs.http.Serve(ln) }()
	return rs, nil
}

// shutdown stops accepting requests, lets the running ones finish within
// timeout, cancels those still running after it, and stops the
// scheduler.
func (rs *runningServer) shutdown(timeout time.Duration) error {
	rs.srv.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := rs.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Cancel what is left; the handlers end their streams at once.
		rs.cancel()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		err = rs.http.Shutdown(ctx2)
		if err != nil {
			rs.http.Close()
		}
	}
	rs.cancel()
	<-rs.sched
	rs.closeAll()
	return err
}

func (rs *runningServer) closeAll() {
	for i := len(rs.closers) - 1; i >= 0; i-- {
		rs.closers[i]()
	}
	rs.closers = nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o        serveOptions
		adapterF stringList
		timeout  = fs.Duration("shutdown-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long running requests may take to finish before they are cancelled")
		logFmt   = fs.String("log-format", "text", "log format: text or json")
		kvMiB    = fs.Int64("kv-cache-mib", 1024, "memory for the KV cache, in MiB")
		t0MiB    = fs.Int64("adapter-cache-mib", 2048, "memory for compute-ready adapters (cache tier 0), in MiB")
		t1MiB    = fs.Int64("adapter-raw-mib", 512, "memory for raw adapter files (cache tier 1), in MiB")
	)
	fs.StringVar(&o.modelPath, "model", "", "Hugging Face model dir or .gguf file (default: TinyStories 260K from ../shared, or $SWITCHYARD_MODEL)")
	fs.StringVar(&o.name, "name", "", "the base model's name in the API (default: derived from --model)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on (HOST:PORT; port 0 picks one)")
	fs.Var(&adapterF, "adapter", "register an adapter at start: NAME=URI (a dir, a GGUF file, s3://, https://, hf://); repeatable")
	fs.StringVar(&o.registryDir, "registry", "", "adapter registry directory, kept between runs (default: a temporary one)")
	fs.StringVar(&o.jobsDir, "jobs", "", "fine-tuning directory (uploaded files, jobs, checkpoints), kept between runs: unfinished jobs resume (default: a temporary one)")
	fs.IntVar(&o.ftWorkers, "finetune-workers", 1, "fine-tuning jobs that train at once")
	fs.IntVar(&o.ftThreads, "finetune-threads", 1, "threads per fine-tuning job")
	fs.BoolVar(&o.allowOnDemand, "allow-on-demand", false, "let requests name an adapter URI as their model, loaded on first use")
	fs.Int64Var(&o.maxRequestBytes, "max-request-bytes", server.DefaultMaxRequestBytes, "largest request body (413 beyond it)")
	fs.IntVar(&o.sched.MaxSeqs, "max-seqs", 64, "most requests running at once")
	fs.IntVar(&o.sched.MaxBatchTokens, "max-batch-tokens", 512, "most tokens per model step")
	fs.IntVar(&o.sched.MaxQueue, "max-queue", 256, "most requests waiting; beyond it requests get 429")
	fs.Var(&o.kvDType, "kv-cache-dtype", kvCacheDTypeUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	switch *logFmt {
	case "text":
		o.log = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		o.log = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		return fmt.Errorf("serve: --log-format must be text or json, not %q", *logFmt)
	}
	o.adapters = adapterF
	o.sched.KVBudgetBytes = *kvMiB << 20
	o.tier0, o.tier1 = *t0MiB<<20, *t1MiB<<20
	if o.modelPath == "" {
		p, err := defaultModel()
		if err != nil {
			return err
		}
		o.modelPath = p
	}
	// Containers stop with SIGTERM; main already turns SIGINT into ctx.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	rs, err := startServer(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "switchyard: serving %s on %s\n", rs.Name, rs.URL)
	o.log.Info("serving", "model", rs.Name, "url", rs.URL)
	select {
	case <-ctx.Done():
		o.log.Info("shutting down", "timeout", *timeout)
		return rs.shutdown(*timeout)
	case err := <-rs.served:
		rs.shutdown(time.Second)
		return err
	}
}
