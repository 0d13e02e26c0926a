//! The go-grpc-prometheus server metrics, in a registry owned by one
//! [`ConnectServer`](crate::ConnectServer) and shared by all its listeners.
//!
//! Every method served has its series from the start (go-grpc-prometheus's
//! `InitializeMetrics`) and its label handles resolved once, found by one
//! hash lookup of the path. Calls to any other path are logged but not
//! counted: an unknown path must not create new series (anyone could
//! otherwise grow the registry without bound), which is also what
//! go-grpc-prometheus does, since unknown methods never reach it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tonic::Code;

use connect_proto::{RpcKind, codes};
use prost_reflect::ServiceDescriptor;

const LABELS: [&str; 3] = ["grpc_service", "grpc_method", "grpc_type"];

/// The server metrics and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    started: IntCounterVec,
    handled: IntCounterVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    seconds: HistogramVec,
    /// Time workers spent busy polling with no new request bytes (see `busy_poll`).
    busy_poll_seconds: Counter,
    /// Failed TLS handshakes, by reason.
    tls_handshake_failures: IntCounterVec,
    /// Calls refused by admission control, by reason.
    calls_refused: IntCounterVec,
    /// Label handles of each method served, by path.
    methods: HashMap<Box<str>, Arc<MethodMetrics>, foldhash::fast::RandomState>,
}

/// What reloads of the TLS files and the token report.
#[derive(Debug, Clone)]
pub(crate) struct ReloadMetrics {
    /// `connect_reload_total{result="ok"}`.
    pub(crate) ok: IntCounter,
    /// `connect_reload_total{result="error"}`: at least one file was refused.
    pub(crate) error: IntCounter,
    /// `connect_tls_certificate_expiry_timestamp_seconds`; `None` when TLS is off.
    pub(crate) certificate_expiry: Option<IntGauge>,
}

/// One method's metrics with their labels already applied: updating them is an atomic add.
#[derive(Debug)]
pub(crate) struct MethodMetrics {
    /// `/package.Service/Method`.
    pub(crate) path: Box<str>,
    kind: RpcKind,
    pub(crate) started: IntCounter,
    handled: [IntCounter; codes::COUNT],
    pub(crate) received: IntCounter,
    pub(crate) sent: IntCounter,
    seconds: Histogram,
}

/// The periodic summary's figures, over every service.
#[derive(Debug, Default)]
struct Summary {
    unary: u64,
    server_stream: u64,
    client_stream: u64,
    bidi: u64,
    streams_open: u64,
    cancelled: u64,
}

impl MethodMetrics {
    /// Counts a finished call: its code and how long it took.
    pub(crate) fn finished(&self, code: Code, seconds: f64) {
        self.handled[codes::index(code)].inc();
        self.seconds.observe(seconds);
    }
}

impl Metrics {
    /// A fresh registry with the five go-grpc-prometheus families (the series
    /// of every method of `services` at zero), `connect_busy_poll_seconds_total`
    /// `connect_tls_handshake_failures_total` and `connect_calls_refused_total`.
    pub fn new(services: &[ServiceDescriptor]) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
        };
        let mut handled_labels = LABELS.to_vec();
        handled_labels.push("grpc_code");
        let metrics = Self {
            registry: Registry::new(),
            started: counter("grpc_server_started_total", "Total number of RPCs started on the server.", &LABELS),
            handled: counter(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                &handled_labels,
            ),
            received: counter(
                "grpc_server_msg_received_total",
                "Total number of RPC stream messages received on the server.",
                &LABELS,
            ),
            sent: counter(
                "grpc_server_msg_sent_total",
                "Total number of gRPC stream messages sent by the server.",
                &LABELS,
            ),
            seconds: HistogramVec::new(
                HistogramOpts::new(
                    "grpc_server_handling_seconds",
                    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                ),
                &LABELS,
            )
            .expect("valid metric definition"),
            busy_poll_seconds: Counter::new(
                "connect_busy_poll_seconds_total",
                "Seconds workers spent busy polling (--busy-poll) with no new request bytes.",
            )
            .expect("valid metric definition"),
            tls_handshake_failures: counter(
                "connect_tls_handshake_failures_total",
                "TLS handshakes that failed, by reason.",
                &["reason"],
            ),
            calls_refused: counter(
                "connect_calls_refused_total",
                "Calls refused by admission control (--max-calls-in-flight), by reason.",
                &["reason"],
            ),
            methods: HashMap::default(),
        };
        let counters = [
            &metrics.started,
            &metrics.handled,
            &metrics.received,
            &metrics.sent,
            &metrics.tls_handshake_failures,
            &metrics.calls_refused,
        ];
        for collector in counters {
            metrics.registry.register(Box::new(collector.clone())).expect("metric names are unique");
        }
        metrics.registry.register(Box::new(metrics.seconds.clone())).expect("metric names are unique");
        metrics
            .registry
            .register(Box::new(metrics.busy_poll_seconds.clone()))
            .expect("metric names are unique");
        let mut metrics = metrics;
        for service in services {
            for method in service.methods() {
                let kind = RpcKind::of(method.is_client_streaming(), method.is_server_streaming());
                let handles = metrics.handles(service.full_name(), method.name(), kind);
                metrics.methods.insert(handles.path.clone(), Arc::new(handles));
            }
        }
        metrics
    }

    /// The metrics of the method at `path`, if it is served.
    pub(crate) fn method(&self, path: &str) -> Option<&Arc<MethodMetrics>> {
        self.methods.get(path)
    }

    /// Logs a one-line summary of the calls so far every `interval` (the
    /// original server's background `testing2`/`testing3` tasks), read from
    /// these metrics, until the task is dropped.
    pub(crate) async fn summarize_every(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await; // the first tick is immediate; skip it
        loop {
            ticker.tick().await;
            let s = self.summary();
            tracing::info!(
                unary = s.unary,
                server_stream = s.server_stream,
                client_stream = s.client_stream,
                bidi = s.bidi,
                streams_open = s.streams_open,
                cancelled = s.cancelled,
                "stats"
            );
        }
    }

    /// The calls of every method so far: started by kind, streams not
    /// finished, and those that ended `CANCELLED`.
    fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for method in self.methods.values() {
            let started = method.started.get();
            let by_kind = match method.kind {
                RpcKind::Unary => &mut summary.unary,
                RpcKind::ServerStream => &mut summary.server_stream,
                RpcKind::ClientStream => &mut summary.client_stream,
                RpcKind::Bidi => &mut summary.bidi,
            };
            *by_kind += started;
            if method.kind.is_stream() {
                let handled: u64 = method.handled.iter().map(IntCounter::get).sum();
                summary.streams_open += started.saturating_sub(handled);
            }
            summary.cancelled += method.handled[codes::index(Code::Cancelled)].get();
        }
        summary
    }

    /// The label handles of one method.
    fn handles(&self, service: &str, method: &str, kind: RpcKind) -> MethodMetrics {
        let labels = [service, method, kind.grpc_type()];
        let handled = std::array::from_fn(|code| {
            let code = codes::prometheus_label(Code::from(code as i32));
            self.handled.with_label_values(&[service, method, kind.grpc_type(), code])
        });
        MethodMetrics {
            path: format!("/{service}/{method}").into(),
            kind,
            started: self.started.with_label_values(&labels),
            handled,
            received: self.received.with_label_values(&labels),
            sent: self.sent.with_label_values(&labels),
            seconds: self.seconds.with_label_values(&labels),
        }
    }

    /// The counter of time spent busy polling, shared by every worker.
    pub(crate) fn busy_poll_seconds(&self) -> Counter {
        self.busy_poll_seconds.clone()
    }

    /// The counter of failed TLS handshakes, shared by every worker.
    pub(crate) fn tls_handshake_failures(&self) -> IntCounterVec {
        self.tls_handshake_failures.clone()
    }

    /// The counter of calls refused for `reason` (`overload`, `connection_share`).
    pub(crate) fn calls_refused(&self, reason: &str) -> IntCounter {
        self.calls_refused.with_label_values(&[reason])
    }

    /// Registers `connect_reload_total` by result (both series at zero) and,
    /// when `tls`, the serving certificate's expiry (unset until the reload
    /// module sets it): a plaintext server has no expiry to alert on.
    pub(crate) fn reload_metrics(&self, tls: bool) -> ReloadMetrics {
        let reloads = IntCounterVec::new(
            Opts::new("connect_reload_total", "Reloads of the TLS files and the token file, by result."),
            &["result"],
        )
        .expect("valid metric definition");
        self.registry.register(Box::new(reloads.clone())).expect("metric names are unique");
        let certificate_expiry = tls.then(|| {
            let gauge = IntGauge::new(
                "connect_tls_certificate_expiry_timestamp_seconds",
                "The serving certificate's notAfter, in seconds since the Unix epoch.",
            )
            .expect("valid metric definition");
            self.registry.register(Box::new(gauge.clone())).expect("metric names are unique");
            gauge
        });
        ReloadMetrics {
            ok: reloads.with_label_values(&["ok"]),
            error: reloads.with_label_values(&["error"]),
            certificate_expiry,
        }
    }

    /// The registry, to add more collectors or serve it.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// `registry` in the Prometheus text exposition format.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::warn!(%error, "cannot encode metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_served_has_its_series_from_the_start() {
        let metrics = Metrics::new(crate::web::schema::connect_service().services());
        let text = metrics.render();
        assert!(text.contains(
            "grpc_server_started_total{grpc_method=\"Check\",grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\"} 0\n"
        ));
        let check = metrics.method("/grpc.health.v1.Health/Check").unwrap();
        check.started.inc();
        check.finished(Code::Ok, 0.001);
        let text = metrics.render();
        assert!(text.contains(
            "grpc_server_started_total{grpc_method=\"Check\",grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\"} 1\n"
        ));
        assert!(text.contains(
            "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Check\",grpc_service=\"grpc.health.v1.Health\",grpc_type=\"unary\"} 1\n"
        ));
        assert!(text.contains(
            "grpc_server_started_total{grpc_method=\"BidiStreamRPC\",grpc_service=\"ConnectService\",grpc_type=\"bidi_stream\"} 0\n"
        ));
        assert!(metrics.method("/grpc.health.v1.Health/Nope").is_none());
    }

    #[test]
    fn reloads_are_counted_by_result_and_the_expiry_is_there_only_with_tls() {
        let plaintext = Metrics::new(&[]);
        let reloads = plaintext.reload_metrics(false);
        assert!(reloads.certificate_expiry.is_none());
        reloads.error.inc();
        let text = plaintext.render();
        assert!(text.contains("connect_reload_total{result=\"ok\"} 0\n"), "{text}");
        assert!(text.contains("connect_reload_total{result=\"error\"} 1\n"), "{text}");
        assert!(!text.contains("connect_tls_certificate_expiry_timestamp_seconds"), "{text}");

        let tls = Metrics::new(&[]);
        let reloads = tls.reload_metrics(true);
        reloads.certificate_expiry.expect("TLS is on").set(1_893_542_400);
        let text = tls.render();
        assert!(text.contains("connect_tls_certificate_expiry_timestamp_seconds 1893542400\n"), "{text}");
    }

    #[test]
    fn the_summary_counts_every_service_by_kind() {
        let metrics = Metrics::new(crate::web::schema::connect_service().services());
        let check = metrics.method("/grpc.health.v1.Health/Check").unwrap();
        check.started.inc();
        check.finished(Code::Ok, 0.001);
        let bidi = metrics.method("/ConnectService/BidiStreamRPC").unwrap();
        bidi.started.inc();
        bidi.started.inc();
        bidi.finished(Code::Cancelled, 0.001);
        let s = metrics.summary();
        assert_eq!(
            (s.unary, s.server_stream, s.client_stream, s.bidi, s.streams_open, s.cancelled),
            (1, 0, 0, 2, 1, 1)
        );
    }
}
