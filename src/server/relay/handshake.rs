//! The checks of a socket's handshake, in order: the room and query (400),
//! the Origin (403), the join token (401, or 403 for another room or role)
//! and the limits of the client's address (429); and the token check the
//! page asks for when its socket would not open.

use std::net::IpAddr;

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Relay, TOKEN_SUBPROTOCOL_PREFIX};
use crate::{
    protocol::{PlayerKey, Role, RoomName},
    server::{
        clock::unix_secs,
        guard::AddressSlot,
        stats::HandshakeRefusal,
        token::{self, Secret},
    },
};

/// The query of the socket URL; all optional.
#[derive(Debug, Deserialize)]
pub struct JoinQuery {
    /// `player` (default) or `spectator`.
    role: Option<String>,
    /// The tab's private key, to take its seat back after a reconnection.
    player: Option<String>,
    /// A signed join token (or in `Sec-WebSocket-Protocol`).
    token: Option<String>,
}

/// A refused handshake.
#[derive(Debug)]
pub struct Refused {
    /// Why, for the metrics.
    pub why: HandshakeRefusal,
    /// The answer's status.
    pub status: StatusCode,
    /// The reason in plain words, as the answer's body.
    pub reason: String,
}

impl Refused {
    fn new(why: HandshakeRefusal, status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            why,
            status,
            reason: reason.into(),
        }
    }

    fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(
            HandshakeRefusal::BadRequest,
            StatusCode::BAD_REQUEST,
            reason,
        )
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

/// Who a handshake may join as, once every check passed.
pub struct Admission {
    /// The room.
    pub room: RoomName,
    /// The seat asked for (or the token's).
    pub role: Role,
    /// The tab's key (or the token's player id).
    pub key: Option<PlayerKey>,
    /// The client address's hold on one of its sockets.
    pub slot: AddressSlot,
}

/// Every check of a handshake from `client`, in order.
pub fn admit(
    room: &str,
    query: JoinQuery,
    client: IpAddr,
    headers: &HeaderMap,
    relay: &Relay,
) -> Result<Admission, Refused> {
    let room = RoomName::parse(room).map_err(|e| Refused::bad_request(e.to_string()))?;
    let asked_role = match query.role.as_deref() {
        None => None,
        Some(role) => Some(
            Role::parse(role)
                .ok_or_else(|| Refused::bad_request("role is \"player\" or \"spectator\""))?,
        ),
    };
    let mut key = match query.player.as_deref() {
        None => None,
        Some(key) => Some(PlayerKey::parse(key).ok_or_else(|| {
            Refused::bad_request("player is 16 to 64 characters of letters, digits, '-' and '_'")
        })?),
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    relay
        .origins
        .check(header(header::ORIGIN), header(header::HOST))
        .map_err(|e| {
            Refused::new(
                HandshakeRefusal::Origin,
                StatusCode::FORBIDDEN,
                e.to_string(),
            )
        })?;
    let mut role = asked_role.unwrap_or_default();
    if let Some(secret) = &relay.token_secret {
        let presented = query.token.or_else(|| token_from_protocols(headers));
        let claims = verify_token(secret, presented.as_deref(), &room, asked_role)?;
        role = claims.role;
        key = Some(claims.player);
    }
    let slot = relay.addresses.admit(client).map_err(|e| {
        Refused::new(
            HandshakeRefusal::Address,
            StatusCode::TOO_MANY_REQUESTS,
            e.to_string(),
        )
    })?;
    Ok(Admission {
        room,
        role,
        key,
        slot,
    })
}

/// Checks a presented join token for `room` (and the role asked for, if
/// any): 401 if missing, malformed, forged or expired; 403 if for another
/// room or role.
fn verify_token(
    secret: &Secret,
    presented: Option<&str>,
    room: &RoomName,
    asked_role: Option<Role>,
) -> Result<token::Claims, Refused> {
    let unauthorized =
        |reason: String| Refused::new(HandshakeRefusal::Token, StatusCode::UNAUTHORIZED, reason);
    let forbidden =
        |reason: &str| Refused::new(HandshakeRefusal::Token, StatusCode::FORBIDDEN, reason);
    let presented = presented.ok_or_else(|| unauthorized("a join token is required".into()))?;
    let claims =
        token::verify(secret, presented, unix_secs()).map_err(|e| unauthorized(e.to_string()))?;
    if claims.room != *room {
        return Err(forbidden("the join token is for another battle"));
    }
    if asked_role.is_some_and(|asked| asked != claims.role) {
        return Err(forbidden("the join token is for another role"));
    }
    Ok(claims)
}

/// `GET /ws/battle/{room}/token?token=..[&role=..]`: whether a socket with
/// this token would be let in, as the handshake would answer (204, 401 or
/// 403; 404 when tokens are off). Browsers cannot read the status of a
/// refused handshake; the battle page asks here to tell the player why.
pub async fn token_status(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    State(relay): State<Relay>,
) -> Response {
    let Some(secret) = &relay.token_secret else {
        return (StatusCode::NOT_FOUND, "join tokens are off").into_response();
    };
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return Refused::bad_request(error.to_string()).into_response(),
    };
    let role = query.role.as_deref().and_then(Role::parse);
    match verify_token(secret, query.token.as_deref(), &room, role) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// A token offered as the subprotocol `token.<token>`.
fn token_from_protocols(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
        .map(str::to_owned)
}
