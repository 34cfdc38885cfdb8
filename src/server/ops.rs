//! For operators: liveness, readiness and metrics.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

use super::{relay::Relay, state::AppState};

/// `/healthz`, `/readyz` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is alive (it answers).
async fn healthz() -> &'static str {
    "ok"
}

/// Ready to take traffic: listening (it answers), not shutting down, and
/// the backplane connected. Otherwise 503, "degraded", with the reason.
async fn readyz(State(relay): State<Relay>) -> Response {
    let problem = if relay.shutdown.is_cancelled() {
        Some("shutting down".to_owned())
    } else {
        relay.hub.ready().err().map(|e| e.to_string())
    };
    match problem {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": reason})),
        )
            .into_response(),
    }
}

/// The metrics, in the OpenMetrics text format Prometheus reads.
async fn metrics(State(relay): State<Relay>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        relay.stats.encode(),
    )
        .into_response()
}
