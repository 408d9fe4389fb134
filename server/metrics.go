package server

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/wpcdb/wpcdb"
)

// metrics are the server's Prometheus metrics. A nil *metrics records
// nothing (Options.Registerer nil).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	items    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, db *wpcdb.DB) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpcdb_grpc_requests_total",
			Help: "gRPC requests handled, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wpcdb_grpc_request_duration_seconds",
			Help:    "Time to handle a gRPC request (a whole stream for Upsert), by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms … 16 s
		}, []string{"method"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpcdb_ingested_items_total",
			Help: "Items written by Upsert, by collection; rate() of it is the ingest rate.",
		}, []string{"collection"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.items, &collectionCollector{db: db}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(fullMethod string, code codes.Code, d time.Duration) {
	if m == nil {
		return
	}
	method := strings.TrimPrefix(fullMethod, "/")
	m.requests.WithLabelValues(method, code.String()).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}

func (m *metrics) ingested(collection string, n uint32) {
	if m == nil || n == 0 {
		return
	}
	m.items.WithLabelValues(collection).Add(float64(n))
}

// collectionCollector reports every collection's size when scraped, so the
// numbers are never stale and dropped collections disappear.
type collectionCollector struct {
	db *wpcdb.DB
}

var (
	collectionItemsDesc = prometheus.NewDesc("wpcdb_collection_items", "Live items in a collection.", []string{"collection"}, nil)
	collectionBytesDesc = prometheus.NewDesc("wpcdb_collection_disk_bytes", "Estimated bytes on disk of a collection.", []string{"collection"}, nil)
)

func (c *collectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- collectionItemsDesc
	ch <- collectionBytesDesc
}

func (c *collectionCollector) Collect(ch chan<- prometheus.Metric) {
	infos, err := c.db.ListCollections()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(collectionItemsDesc, err)
		return
	}
	for _, info := range infos {
		ch <- prometheus.MustNewConstMetric(collectionItemsDesc, prometheus.GaugeValue, float64(info.Count), info.Name)
		ch <- prometheus.MustNewConstMetric(collectionBytesDesc, prometheus.GaugeValue, float64(info.DiskBytes), info.Name)
	}
}
