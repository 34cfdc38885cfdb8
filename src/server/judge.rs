//! The judge's publish API: `POST /api/battles/{room}/events`, so the
//! service that runs submissions can push authoritative verdicts into a
//! room, on every instance, marked as the judge's.

use std::sync::Arc;

use axum::{
    extract::{rejection::JsonRejection, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    hub::{Hub, VerdictError},
    state::AppState,
    token::Secret,
};
use crate::protocol::{Action, PlayerKey, RoomName};

/// What the publish API needs.
#[derive(Debug, Clone)]
pub struct Judge {
    /// The rooms.
    pub hub: Arc<Hub>,
    /// The bearer secret; the API answers 404 when there is none.
    pub secret: Option<Arc<Secret>>,
}

/// The route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/battles/{room}/events", post(publish))
}

/// A verdict, as the judge sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdict {
    /// The player's private id, as in their join token.
    player: String,
    /// One of AC, WA, TLE, MLE, FAILED_TC<n>, RUN_COMPLETE.
    action: String,
}

/// An answer with a status and a JSON body `{"error": ...}`.
fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn publish(
    State(judge): State<Judge>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Verdict>, JsonRejection>,
) -> Response {
    let Some(secret) = &judge.secret else {
        return refuse(
            StatusCode::NOT_FOUND,
            "the publish API is off: set --publish-secret",
        );
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !bearer.is_some_and(|presented| secret.matches(presented)) {
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer secret is required",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer".parse().expect("a valid header"),
        );
        return response;
    }
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let verdict = match body {
        Ok(Json(verdict)) => verdict,
        Err(rejection) => return refuse(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let Some(player) = PlayerKey::parse(&verdict.player) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "player is 16 to 64 characters of letters, digits, '-' and '_'",
        );
    };
    let action = match Action::parse(&verdict.action) {
        Ok(action @ (Action::Running | Action::Submitted)) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{action} comes from the players, not the judge"),
            )
        }
        Ok(action) => action,
        Err(error) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string()),
    };
    match judge.hub.publish_verdict(&room, &player, action).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"published": action}))).into_response(),
        Err(VerdictError::NoSuchPlayer) => refuse(
            StatusCode::NOT_FOUND,
            "no player with this id in this battle",
        ),
        Err(VerdictError::Backplane(error)) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
    }
}
