//! The checks of a socket's handshake, in order: the room and query (400),
//! the Origin (403), the join token (401, or 403 for another room or role)
//! and admission (429 with `Retry-After`: the process's budget, then the
//! player's limit for a valid token, else the address's); and the checks
//! the page asks for when its socket would not open (browsers do not show
//! a refused handshake's status).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Path, Query, Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Relay, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX};
use crate::{
    protocol::{PlayerKey, PlayerName, Role, RoomName, Since},
    server::{
        clock::unix_secs,
        guard::{self, retry_secs, Limit, Slot},
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
    /// The last `seq` the page saw, to recover what it missed.
    since: Option<String>,
    /// The player's display name (a token's name wins).
    name: Option<String>,
}

/// The addresses a request went through, as proxies add them.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A refused handshake.
#[derive(Debug)]
pub struct Refused {
    /// Why, for the metrics.
    pub why: HandshakeRefusal,
    /// The answer's status.
    pub status: StatusCode,
    /// The reason in plain words, as the answer's body.
    pub reason: String,
    /// For a 429: seconds until trying again makes sense (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl Refused {
    fn new(why: HandshakeRefusal, status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            why,
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// 429 for a socket that admission refused.
    fn busy(refused: guard::Refused) -> Self {
        let why = match refused.limit {
            Limit::Budget => HandshakeRefusal::Budget,
            Limit::Address => HandshakeRefusal::Address,
            Limit::Player => HandshakeRefusal::Player,
        };
        Self {
            retry_after: Some(retry_secs(refused.retry_after)),
            ..Self::new(why, StatusCode::TOO_MANY_REQUESTS, refused.to_string())
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
        let mut response = (self.status, self.reason).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The client's address: the peer, or whom a trusted proxy says it
/// forwards.
pub fn client_address(relay: &Relay, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    relay.proxies.client(peer.ip(), &forwarded_for)
}

/// The answer to a WebSocket handshake (101, naming the server's
/// subprotocol if the client offered it), or 400 for a request that is not
/// one: the first check, so that a plain request spends no admission.
pub fn switching_protocols(request: &Request) -> Result<Response, Refused> {
    let mut answer =
        tungstenite::handshake::server::create_response_with_body(request, Body::empty)
            .map_err(|e| Refused::bad_request(format!("not a WebSocket handshake: {e}")))?;
    if offered_protocols(request.headers()).any(|protocol| protocol == SUBPROTOCOL) {
        answer.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(answer)
}

/// Who a handshake may join as, once every check passed.
pub struct Admission {
    /// The room.
    pub room: RoomName,
    /// The seat asked for (or the token's).
    pub role: Role,
    /// The tab's key (or the token's player id).
    pub key: Option<PlayerKey>,
    /// The display name: the token's, or else the one the page asked for.
    pub name: Option<PlayerName>,
    /// The name is the token's: the page cannot change it.
    pub name_locked: bool,
    /// The socket's place in the admission counts.
    pub slot: Slot,
    /// What the page presented as the last `seq` it saw.
    pub since: Since,
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
    let mut name = match query.name.as_deref() {
        None => None,
        Some(name) => {
            Some(PlayerName::parse(name).map_err(|e| Refused::bad_request(format!("name: {e}")))?)
        }
    };
    let mut name_locked = false;
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
    let slot = match &relay.token_secret {
        Some(secret) => {
            let presented = query.token.or_else(|| token_from_protocols(headers));
            let claims = match verify_token(secret, presented.as_deref(), &room, asked_role) {
                Ok(claims) => claims,
                Err(refused) => {
                    // A failed attempt spends the address's budget.
                    relay
                        .admission
                        .charge_failed_attempt(client)
                        .map_err(Refused::busy)?;
                    return Err(refused);
                }
            };
            role = claims.role;
            let slot = relay.admission.admit_player(&claims.player, client);
            key = Some(claims.player);
            if claims.name.is_some() {
                name = claims.name;
                name_locked = true;
            }
            slot
        }
        None => relay.admission.admit_address(client),
    }
    .map_err(Refused::busy)?;
    Ok(Admission {
        room,
        role,
        key,
        name,
        name_locked,
        slot,
        since: Since::parse(query.since.as_deref()),
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
    State(relay): State<Arc<Relay>>,
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

/// `GET /ws/battle/{room}/admission?[role=..][&token=..]`: whether a socket
/// from this client would be let in now, without spending anything: 204;
/// 429 with `Retry-After` while it would be refused as busy; 401 or 403 for
/// a presented token that would be refused. The battle page asks here when its socket
/// did not open, and waits as long as it is told.
pub async fn admission_status(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(relay): State<Arc<Relay>>,
) -> Response {
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return Refused::bad_request(error.to_string()).into_response(),
    };
    let client = client_address(&relay, peer, &headers);
    // A page without a token is not told about tokens (it may be waiting
    // for a link that has one); a page with one learns whether it is good.
    let player = match (&relay.token_secret, query.token.as_deref()) {
        (Some(secret), Some(token)) => {
            let role = query.role.as_deref().and_then(Role::parse);
            match verify_token(secret, Some(token), &room, role) {
                Ok(claims) => Some(claims.player),
                Err(refused) => return refused.into_response(),
            }
        }
        _ => None,
    };
    match relay.admission.busy_for(client, player.as_ref()) {
        Some(wait) => {
            let secs = retry_secs(wait);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, HeaderValue::from(secs))],
                format!("busy; try again in {secs} s"),
            )
                .into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// A token offered as the subprotocol `token.<token>`.
fn token_from_protocols(headers: &HeaderMap) -> Option<String> {
    offered_protocols(headers)
        .find_map(|protocol| protocol.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
        .map(str::to_owned)
}

/// The subprotocols a handshake offers (`Sec-WebSocket-Protocol`).
fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}
