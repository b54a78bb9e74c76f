package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-ai/switchyard/engine"
)

// metrics are the server's Prometheus metrics:
//
//	switchyard_http_requests_total{route,code}    HTTP requests by route pattern and status
//	switchyard_tokens_total{kind}                 prompt and completion tokens processed
//	switchyard_time_to_first_token_seconds        histogram, from the request to its first token
//	switchyard_inter_token_latency_seconds        histogram, between a request's successive tokens
//	switchyard_adapter_requests_total{model}      generations by base model or adapter name
//	switchyard_rejected_requests_total            generations refused because the queue was full
//	switchyard_queue_depth                        requests waiting in the scheduler
//	switchyard_batch_size                         requests the scheduler is running
type metrics struct {
	requests        *prometheus.CounterVec
	tokens          *prometheus.CounterVec
	ttft            prometheus.Histogram
	itl             prometheus.Histogram
	adapterRequests *prometheus.CounterVec
	rejected        prometheus.Counter
}

// newMetrics creates the metrics and registers them with reg.
func newMetrics(reg prometheus.Registerer, sched *engine.Scheduler) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_tokens_total", Help: "Tokens processed, by kind (prompt or completion).",
		}, []string{"kind"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchyard_time_to_first_token_seconds", Help: "Time from a generation request to its first token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		itl: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchyard_inter_token_latency_seconds", Help: "Time between successive tokens of a generation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		adapterRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_adapter_requests_total", Help: "Generations by model: the base model's name or the adapter's.",
		}, []string{"model"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_rejected_requests_total", Help: "Generations refused with 429 because the scheduler's queue was full.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.tokens, m.ttft, m.itl, m.adapterRequests, m.rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_queue_depth", Help: "Requests waiting in the scheduler's queue.",
		}, func() float64 { return float64(sched.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_batch_size", Help: "Requests in the scheduler's running batch.",
		}, func() float64 { return float64(sched.Running()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
