package adapters

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Cache's Prometheus metrics. The hit path writes none of
// them: tier-0 hits are counted in each entry (which a hit writes
// anyway) and summed when the metrics are collected, so that requests on
// different cores never contend for one counter.
type metrics struct {
	c         *Cache
	hits      [Tier3 + 1]atomic.Uint64 // loads served by tiers 1-3 (index 0 unused)
	misses    [nTiers]atomic.Uint64    // requests (tier 0) and loads (tiers 1-2) that missed
	evictions [nTiers]atomic.Uint64
	load      *prometheus.HistogramVec

	hitsDesc, missesDesc, bytesDesc, evictionsDesc *prometheus.Desc
}

// Metric names.
const (
	metricPrefix = "switchyard_adapter_cache_"
)

func newMetrics(c *Cache, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		c: c,
		load: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "load_seconds",
			Help:    "Time to make an adapter compute-ready (tier 0), by the tier it was read from (raw, disk, remote).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to 16 s
		}, []string{"source"}),
		hitsDesc: prometheus.NewDesc(metricPrefix+"hits_total",
			"Adapter requests (tier 0) or loads (tiers 1-3) that found the adapter in the tier.", []string{"tier"}, nil),
		missesDesc: prometheus.NewDesc(metricPrefix+"misses_total",
			"Adapter requests (tier 0) or loads (tiers 1-2) that did not find the adapter in the tier.", []string{"tier"}, nil),
		bytesDesc: prometheus.NewDesc(metricPrefix+"bytes",
			"Bytes held in each tier (0 compute-ready, 1 raw in memory, 2 disk).", []string{"tier"}, nil),
		evictionsDesc: prometheus.NewDesc(metricPrefix+"evictions_total",
			"Adapters evicted from each tier to make room.", []string{"tier"}, nil),
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
		if err := reg.Register(m.load); err != nil {
			reg.Unregister(m)
			return nil, err
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.hitsDesc
	ch <- m.missesDesc
	ch <- m.bytesDesc
	ch <- m.evictionsDesc
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	c := m.c
	c.mu.Lock()
	hits0 := c.gone.hits0
	for _, e := range c.entries {
		hits0 += e.hits.Load()
	}
	var bytes [nTiers]int64
	for t := range nTiers {
		bytes[t] = c.tiers[t].bytes
	}
	bytes[Tier2] += c.orphanBytesLocked()
	c.mu.Unlock()

	for t := range Tier3 + 1 {
		n := m.hits[t].Load()
		if t == Tier0 {
			n = hits0
		}
		ch <- prometheus.MustNewConstMetric(m.hitsDesc, prometheus.CounterValue, float64(n), strconv.Itoa(t))
	}
	for t := range nTiers {
		label := strconv.Itoa(t)
		ch <- prometheus.MustNewConstMetric(m.missesDesc, prometheus.CounterValue, float64(m.misses[t].Load()), label)
		ch <- prometheus.MustNewConstMetric(m.bytesDesc, prometheus.GaugeValue, float64(bytes[t]), label)
		ch <- prometheus.MustNewConstMetric(m.evictionsDesc, prometheus.CounterValue, float64(m.evictions[t].Load()), label)
	}
}

// miss0 counts a request that did not find its adapter in tier 0.
func (m *metrics) miss0() { m.misses[Tier0].Add(1) }

// evicted counts an eviction from tier t.
func (m *metrics) evicted(t int) { m.evictions[t].Add(1) }

// loaded records a load that read from tier source.
func (m *metrics) loaded(source int, d time.Duration, err error) {
	if err != nil {
		return
	}
	m.hits[source].Add(1)
	for t := Tier1; t < source; t++ {
		m.misses[t].Add(1)
	}
	m.load.WithLabelValues(tierName(source)).Observe(d.Seconds())
}
