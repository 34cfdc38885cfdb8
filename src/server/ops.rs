//! For operators: liveness, readiness and metrics, on the main port or, with
//! `--metrics-addr`, the metrics and the readiness reason on a port of
//! their own.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

use super::{relay::Relay, state::AppState};

/// The operators' routes on the main port: `/healthz` and `/readyz`, and,
/// unless the operators have a port of their own, `/metrics` and the
/// reason of a degraded `/readyz`.
pub fn routes(operator_port: bool) -> Router<AppState> {
    let router = Router::new().route("/healthz", get(healthz));
    if operator_port {
        router.route("/readyz", get(readyz_brief))
    } else {
        router
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
    }
}

/// The operators' own port: `/healthz`, `/readyz` with its reason, and
/// `/metrics`.
pub fn operator_router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(relay)
}

/// The process is alive (it answers).
async fn healthz() -> &'static str {
    "ok"
}

/// Why the instance should get no traffic now, if it should not: shutting
/// down, or the backplane not connected.
fn unready(relay: &Relay) -> Option<String> {
    if relay.shutdown.is_cancelled() {
        Some("shutting down".to_owned())
    } else {
        relay.hub.ready().err().map(|e| e.to_string())
    }
}

/// Ready to take traffic: 200 "ready", otherwise 503 "degraded" with the
/// reason.
async fn readyz(State(relay): State<Arc<Relay>>) -> Response {
    match unready(&relay) {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": reason})),
        )
            .into_response(),
    }
}

/// Like [`readyz`], without the reason (it is on the operators' port).
async fn readyz_brief(State(relay): State<Arc<Relay>>) -> Response {
    match unready(&relay) {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded"})),
        )
            .into_response(),
    }
}

/// The metrics, in the OpenMetrics text format Prometheus reads.
async fn metrics(State(relay): State<Arc<Relay>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        relay.stats.encode(),
    )
        .into_response()
}
