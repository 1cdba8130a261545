package gateway

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/actors"
)

// metricsNamespace prefixes every metric Parley exports.
const metricsNamespace = "parley"

// gatewayCounters are the gateway's own counters, read by the collectors
// of /metrics. They are updated from event loops and handlers without
// locks.
type gatewayCounters struct {
	wsOpened  atomic.Uint64
	sseOpened atomic.Uint64
	frames    atomic.Uint64 // client frames received
	badFrames atomic.Uint64 // client frames answered bad_request
	limited   atomic.Uint64 // client frames dropped over the command rate
}

// newMetrics registers Parley's collectors on reg: the gateway's
// connections and frames, the actor system's sessions, generations, event
// log writes and live text, and the Go runtime and process. Values are
// read when scraped; nothing is computed on the hot path but atomic adds.
func (s *Server) newMetrics(reg *prometheus.Registry) http.Handler {
	sys := s.cfg.System
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
	}
	stat := func(f func(actors.Stats) float64) func() float64 { return func() float64 { return f(sys.Stats()) } }
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("websockets_open", "WebSocket connections open.", func() float64 { return float64(s.OpenConnections()) }),
		gauge("sse_streams_open", "SSE streams open.", func() float64 { return float64(s.OpenStreams()) }),
		counter("websockets_opened_total", "WebSocket connections accepted.", func() float64 { return float64(s.counters.wsOpened.Load()) }),
		counter("sse_streams_opened_total", "SSE streams started.", func() float64 { return float64(s.counters.sseOpened.Load()) }),
		counter("client_frames_total", "WebSocket frames received from clients.", func() float64 { return float64(s.counters.frames.Load()) }),
		counter("client_frames_rate_limited_total", "Client frames dropped over the command rate.", func() float64 { return float64(s.counters.limited.Load()) }),
		counter("client_bad_frames_total", "Client frames answered with bad_request.", func() float64 { return float64(s.counters.badFrames.Load()) }),
		gauge("connection_actors", "Connection actors alive.", stat(func(st actors.Stats) float64 { return float64(st.Connections) })),
		gauge("sessions_active", "Session actors in memory.", stat(func(st actors.Stats) float64 { return float64(st.Sessions) })),
		gauge("generations_running", "Generations running, waiting in line included.", stat(func(st actors.Stats) float64 { return float64(st.Generations) })),
		gauge("generations_queued", "Generations waiting in line for their model.", stat(func(st actors.Stats) float64 { return float64(st.Queued) })),
		counter("passivations_total", "Idle session actors stopped.", stat(func(st actors.Stats) float64 { return float64(st.Passivations) })),
		counter("rehydrations_total", "Session actors rebuilt from the log.", stat(func(st actors.Stats) float64 { return float64(st.Rehydrations) })),
		counter("eventlog_appends_total", "Writes to the event log (JetStream).", stat(func(st actors.Stats) float64 { return float64(st.Appends) })),
		counter("eventlog_append_events_total", "Events written to the event log.", stat(func(st actors.Stats) float64 { return float64(st.AppendEvents) })),
		counter("eventlog_append_errors_total", "Failed writes to the event log.", stat(func(st actors.Stats) float64 { return float64(st.AppendErrors) })),
		counter("eventlog_append_seconds_total", "Time spent writing to the event log.", stat(func(st actors.Stats) float64 { return st.AppendSeconds })),
		counter("deltas_total", "Live reply deltas fanned out (once per delta).", stat(func(st actors.Stats) float64 { return float64(st.Deltas) })),
		counter("delta_bytes_total", "Bytes of live reply text fanned out (once per delta).", stat(func(st actors.Stats) float64 { return float64(st.DeltaBytes) })),
	)
	ended := prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", "generations_ended_total"),
		"Generations ended, by how.", []string{"how"}, nil)
	reg.MustRegister(&funcCollector{desc: ended, collect: func(ch chan<- prometheus.Metric) {
		st := sys.Stats()
		for how, n := range map[string]uint64{"completed": st.Completed, "stopped": st.Stopped, "failed": st.Failed, "interrupted": st.Interrupted} {
			ch <- prometheus.MustNewConstMetric(ended, prometheus.CounterValue, float64(n), how)
		}
	}})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// funcCollector collects one labelled metric family from a function.
type funcCollector struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
