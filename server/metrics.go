package server

import (
	"runtime"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/wpcdb/wpcdb"
)

// metrics are the server's Prometheus metrics: the standard gRPC server
// metrics of go-grpc-middleware (grpc_server_started_total,
// grpc_server_handled_total, grpc_server_handling_seconds, … labelled by
// grpc_service, grpc_method, grpc_type and grpc_code), which stock
// dashboards read, and wpcdb's own. A nil *metrics records nothing
// (Options.Registerer nil).
type metrics struct {
	grpc  *grpcprom.ServerMetrics
	items *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, db *wpcdb.DB, o *Options) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(0.0005, 2, 16)))), // 0.5 ms … 16 s
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpcdb_ingested_items_total",
			Help: "Items written by Upsert, by collection; rate() of it is the ingest rate.",
		}, []string{"collection"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wpcdb_build_info",
		Help:        "Always 1; the labels say which wpcdb this is.",
		ConstLabels: prometheus.Labels{"version": o.Version, "revision": o.Revision, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{m.grpc, m.items, buildInfo, &collectionCollector{db: db}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// unary and stream are the interceptors that count and time requests;
// nil without metrics.
func (m *metrics) unary() grpc.UnaryServerInterceptor {
	if m == nil {
		return nil
	}
	return m.grpc.UnaryServerInterceptor()
}

func (m *metrics) stream() grpc.StreamServerInterceptor {
	if m == nil {
		return nil
	}
	return m.grpc.StreamServerInterceptor()
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
