package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trail-audit/trail"
)

// Metrics are Trail's Prometheus metrics, on a registry of their own (no
// global state).
type Metrics struct {
	Registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	eventsIngested *prometheus.CounterVec
	commitEvents   prometheus.Histogram
	commitRequests prometheus.Histogram
	commitDuration prometheus.Histogram
	exports        *prometheus.CounterVec
	exportRows     prometheus.Counter
	exportDuration prometheus.Histogram
	streamEvents   *prometheus.CounterVec
	streamFailures *prometheus.CounterVec
	streamRetries  *prometheus.CounterVec
	streamLag      *prometheus.GaugeVec
	rounds         *prometheus.CounterVec
	checkpoints    prometheus.Counter
	handler        http.Handler
}

// NewMetrics registers Trail's metrics and the Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trail_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		eventsIngested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_events_ingested_total", Help: "Events accepted, by outcome (stored or duplicate).",
		}, []string{"outcome"}),
		commitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_commit_batch_events", Help: "Events per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		commitRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_commit_batch_requests", Help: "Append requests per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_commit_duration_seconds", Help: "Duration of one group commit, fsync included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_exports_total", Help: "Exports this node finished, by state (ready or error).",
		}, []string{"state"}),
		exportRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_export_rows_total", Help: "Rows written to the files of ready exports by this node.",
		}),
		exportDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trail_export_duration_seconds", Help: "Duration of an export's successful attempt, from its claim to its file recorded.",
			Buckets: prometheus.ExponentialBuckets(0.05, 4, 10),
		}),
		streamEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_stream_delivered_events_total", Help: "Events delivered to each log stream by this node.",
		}, []string{"stream", "type"}),
		streamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_stream_failures_total", Help: "Failed deliveries to each log stream by this node, by the state they left it in (error or invalid).",
		}, []string{"stream", "type", "state"}),
		streamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_stream_retries_total", Help: "Deliveries this node sent again after a failure, per log stream.",
		}, []string{"stream", "type"}),
		streamLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trail_stream_lag_events", Help: "Events of each log stream not delivered yet, as last seen by the node that delivers it.",
		}, []string{"stream", "type"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_integrator_rounds_total", Help: "Rounds of this node's integrator (new events added to the organizations' trees), by outcome (ok or error).",
		}, []string{"outcome"}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_checkpoints_total", Help: "Checkpoints this node signed and stored.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.eventsIngested, m.commitEvents, m.commitRequests, m.commitDuration,
		m.exports, m.exportRows, m.exportDuration, m.streamEvents, m.streamFailures, m.streamRetries, m.streamLag,
		m.rounds, m.checkpoints,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// ObserveRound counts a round of the integrator and the checkpoints it
// stored (tlog.Integrator.OnRound).
func (m *Metrics) ObserveRound(n int, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.rounds.WithLabelValues(outcome).Inc()
	m.checkpoints.Add(float64(n))
}

// ObserveExport counts an export that ended, in d (export.Worker.OnFinish).
func (m *Metrics) ObserveExport(ex *trail.Export, d time.Duration) {
	m.exports.WithLabelValues(ex.State).Inc()
	if ex.State == trail.ExportReady {
		m.exportRows.Add(float64(ex.Rows))
		m.exportDuration.Observe(d.Seconds())
	}
}

// StreamDelivered counts events delivered to a stream (delivery.Observer).
func (m *Metrics) StreamDelivered(s *trail.Stream, events int) {
	m.streamEvents.WithLabelValues(s.ID, s.Type).Add(float64(events))
}

// StreamFailed counts a failed delivery, by the state it left the stream
// in.
func (m *Metrics) StreamFailed(s *trail.Stream, state string) {
	m.streamFailures.WithLabelValues(s.ID, s.Type, state).Inc()
}

// StreamRetried counts a delivery sent again after a failure.
func (m *Metrics) StreamRetried(s *trail.Stream) {
	m.streamRetries.WithLabelValues(s.ID, s.Type).Inc()
}

// StreamLag records how many events a stream has not delivered yet.
func (m *Metrics) StreamLag(s *trail.Stream) {
	m.streamLag.WithLabelValues(s.ID, s.Type).Set(float64(s.Lag))
}

// StreamDeleted drops the series of a deleted stream, so that /metrics
// does not report it until the next restart.
func (m *Metrics) StreamDeleted(s *trail.Stream) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.streamEvents, m.streamFailures, m.streamRetries, m.streamLag} {
		v.DeletePartialMatch(prometheus.Labels{"stream": s.ID})
	}
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) observeIngest(results []trail.AppendResult) {
	var stored, dup float64
	for _, r := range results {
		switch {
		case r.Err != nil:
		case r.Duplicate:
			dup++
		default:
			stored++
		}
	}
	m.eventsIngested.WithLabelValues("stored").Add(stored)
	m.eventsIngested.WithLabelValues("duplicate").Add(dup)
}

// ObserveCommit records one group commit; drivers call it through their
// OnCommit hook.
func (m *Metrics) ObserveCommit(events, requests int, d time.Duration) {
	m.commitEvents.Observe(float64(events))
	m.commitRequests.Observe(float64(requests))
	m.commitDuration.Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format, to anyone: it
// is for the operator's own listener (--metrics-addr). The API's
// GET /metrics asks for a key.
func (m *Metrics) Handler() http.Handler { return m.handler }

// handleMetrics is GET /metrics on the public listener: the series name
// every tenant's log streams, so an organization's key is refused (403,
// even an admin one) and an instance-wide key needs the metrics
// permission.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	if !key.CanInstance(trail.PermMetrics) {
		s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "Instance metrics need an instance-wide key with the metrics permission."))
		return
	}
	s.Metrics.handler.ServeHTTP(w, r)
}
