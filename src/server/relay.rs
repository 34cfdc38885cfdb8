//! The WebSocket route `/ws/battle/{room}/`: checks the room and the query,
//! upgrades, and runs one task per connection. This task is the only code
//! that touches the socket.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        ConnectInfo, Path, Query, State, WebSocketUpgrade,
    },
    http::{header, HeaderMap, HeaderName, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, info, warn};

use super::{
    backplane::JoinError,
    guard::{
        AddressGuard, AddressSlot, ConnectionLimiter, OriginPolicy, RateLimits, TrustedProxies,
        Verdict,
    },
    hub::{Hub, Outgoing},
    roster::{JoinRequest, Refusal},
    stats::{CloseReason, DropReason, HandshakeRefusal, Kind, Stats},
    token::{self, Secret},
    AppState,
};
use crate::protocol::{
    close, parse_client_frame, ClientEvent, FrameError, PlayerKey, Role, RoomName, ServerFrame,
    Welcome, MAX_FRAME_BYTES, PROTOCOL_VERSION,
};

/// Bytes read from the socket at a time, allocated for every connection
/// (axum's default is 128 KiB). Frames are a few hundred bytes; a larger one
/// grows the buffer as it needs. Measured: 4 KiB cost 3 KiB more per idle
/// connection than 1 KiB (docs/performance.md).
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes written to the socket at a time.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Most bytes waiting to be written before a send waits for the socket.
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Hard cap on a frame read from the socket. Frames over
/// [`MAX_FRAME_BYTES`] but under this cap are read whole and answered with a
/// clean close (1009); larger ones make the socket fail at once.
const MAX_READ_FRAME_BYTES: usize = 16 * MAX_FRAME_BYTES;
/// How long the server waits for the client's answer to its close frame.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// The addresses a request went through, as proxies add them.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The subprotocol the server speaks; a client that offers subprotocols
/// (to carry a token) must offer this one too.
pub const SUBPROTOCOL: &str = "battle-status";
/// Prefix of the subprotocol that carries a join token.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "token.";

/// What every connection shares.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The rooms of this node.
    pub hub: Arc<Hub>,
    /// The counters.
    pub stats: Arc<Stats>,
    /// How often each connection is pinged.
    pub heartbeat: Duration,
    /// How long a connection may stay silent before it counts as dropped.
    pub silence_limit: Duration,
    /// Cancelled when the server shuts down: every socket closes with 1001.
    pub shutdown: CancellationToken,
    /// The connection tasks, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Which pages may open sockets.
    pub origins: Arc<OriginPolicy>,
    /// Each connection's rates.
    pub rates: RateLimits,
    /// Sockets and connection rates per client address.
    pub addresses: Arc<AddressGuard>,
    /// Whose `X-Forwarded-For` tells the client's address.
    pub proxies: Arc<TrustedProxies>,
    /// Join tokens are required when set.
    pub token_secret: Option<Arc<Secret>>,
}

/// The relay's routes, with and without the original trailing slash.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/battle/{room}", get(upgrade))
        .route("/ws/battle/{room}/", get(upgrade))
        .route("/ws/battle/{room}/token", get(token_check))
}

/// The query of the socket URL; all optional.
#[derive(Debug, Deserialize)]
struct JoinQuery {
    /// `player` (default) or `spectator`.
    role: Option<String>,
    /// The tab's private key, to take its seat back after a reconnection.
    player: Option<String>,
    /// A signed join token (or in `Sec-WebSocket-Protocol`).
    token: Option<String>,
}

/// A refused handshake: why (for the metrics), its status, and its reason
/// in plain words.
struct Refused(HandshakeRefusal, StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.1, self.2).into_response()
    }
}

fn bad_request(reason: &str) -> Refused {
    Refused(
        HandshakeRefusal::BadRequest,
        StatusCode::BAD_REQUEST,
        reason.to_owned(),
    )
}

/// Who a handshake may join as, once every check passed.
struct Admission {
    room: RoomName,
    role: Role,
    key: Option<PlayerKey>,
    slot: AddressSlot,
}

async fn upgrade(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(relay): State<Relay>,
    ws: WebSocketUpgrade,
) -> Response {
    let forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let client = relay.proxies.client(peer.ip(), &forwarded_for);
    let admission = match admit(&room, query, client, &headers, &relay) {
        Ok(admission) => admission,
        Err(refused) => {
            relay.stats.refused(refused.0);
            debug!(%client, status = %refused.1, reason = %refused.2, "handshake refused");
            return refused.into_response();
        }
    };
    let tasks = relay.tasks.clone();
    ws.protocols([SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_READ_FRAME_BYTES)
        .max_frame_size(MAX_READ_FRAME_BYTES)
        .on_upgrade(move |socket| tasks.track_future(connection(socket, admission, relay)))
}

/// Every check of a handshake, in order: the room and query (400), the
/// Origin (403), the join token (401, or 403 for another room or role) and
/// the limits of the `client` address (429).
fn admit(
    room: &str,
    query: JoinQuery,
    client: IpAddr,
    headers: &HeaderMap,
    relay: &Relay,
) -> Result<Admission, Refused> {
    let room = RoomName::parse(room).map_err(|e| bad_request(&e.to_string()))?;
    let asked_role = match query.role.as_deref() {
        None => None,
        Some(role) => Some(
            Role::parse(role).ok_or_else(|| bad_request("role is \"player\" or \"spectator\""))?,
        ),
    };
    let mut key = match query.player.as_deref() {
        None => None,
        Some(key) => Some(PlayerKey::parse(key).ok_or_else(|| {
            bad_request("player is 16 to 64 characters of letters, digits, '-' and '_'")
        })?),
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    relay
        .origins
        .check(header(header::ORIGIN), header(header::HOST))
        .map_err(|e| {
            Refused(
                HandshakeRefusal::Origin,
                StatusCode::FORBIDDEN,
                e.to_string(),
            )
        })?;
    let mut role = asked_role.unwrap_or_default();
    if let Some(secret) = &relay.token_secret {
        let presented = query.token.or_else(|| token_from_protocols(headers));
        let claims = check_token(secret, presented.as_deref(), &room, asked_role)?;
        role = claims.role;
        key = Some(claims.player);
    }
    let slot = relay.addresses.admit(client).map_err(|e| {
        Refused(
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
fn check_token(
    secret: &Secret,
    presented: Option<&str>,
    room: &RoomName,
    asked_role: Option<Role>,
) -> Result<token::Claims, Refused> {
    let unauthorized =
        |reason: String| Refused(HandshakeRefusal::Token, StatusCode::UNAUTHORIZED, reason);
    let forbidden = |reason: &str| {
        Refused(
            HandshakeRefusal::Token,
            StatusCode::FORBIDDEN,
            reason.into(),
        )
    };
    let presented = presented.ok_or_else(|| unauthorized("a join token is required".into()))?;
    let claims =
        token::verify(secret, presented, unix_now()).map_err(|e| unauthorized(e.to_string()))?;
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
async fn token_check(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    State(relay): State<Relay>,
) -> Response {
    let Some(secret) = &relay.token_secret else {
        return (StatusCode::NOT_FOUND, "join tokens are off").into_response();
    };
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return bad_request(&error.to_string()).into_response(),
    };
    let role = query.role.as_deref().and_then(Role::parse);
    match check_token(secret, query.token.as_deref(), &room, role) {
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// How a connection ends.
enum Ending {
    /// The client closed: `clean` if it said it was leaving (code 1000).
    ByClient { clean: bool },
    /// The socket failed or vanished.
    Lost,
    /// The server closes, for this reason.
    ByServer(CloseReason),
}

async fn connection(mut socket: WebSocket, admission: Admission, relay: Relay) {
    let Admission {
        room,
        role,
        key,
        slot: _slot,
    } = admission;
    relay.stats.connection_opened();
    let _open = OpenConnection(&relay.stats);
    let limiter = ConnectionLimiter::new(&relay.rates);
    let conn = uuid::Uuid::new_v4().simple().to_string();
    let request = JoinRequest {
        conn: conn.clone(),
        role,
        key,
        new_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    let (mut membership, joined) = match relay.hub.join(&room, request).await {
        Ok(joined) => joined,
        Err(error) => {
            info!(%room, %conn, %error, "refused");
            let (code, reason) = refusal_frame(&error);
            close_socket(&mut socket, code, reason).await;
            return;
        }
    };
    let me = joined.seat.member.id.clone();
    info!(%room, %conn, member = %me, ?role, resumed = joined.seat.resumed, "joined");
    let welcome = ServerFrame::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        room: room.clone(),
        you: me.clone(),
        role,
        resumed: joined.seat.resumed,
        seq: joined.seq,
        heartbeat_ms: u64::try_from(relay.heartbeat.as_millis()).unwrap_or(u64::MAX),
        members: joined.members,
    });
    if !send(
        &mut socket,
        Message::Text(welcome.to_json().into()),
        relay.silence_limit,
    )
    .await
    {
        return;
    }
    let mut heartbeat = interval_at(Instant::now() + relay.heartbeat, relay.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let ending = loop {
        // Biased, outgoing first: a connection's queue is drained before it
        // may read more, so a fast sender cannot outrun its own echoes.
        tokio::select! {
            biased;
            () = relay.shutdown.cancelled() => {
                break Ending::ByServer(CloseReason::Shutdown);
            }
            outgoing = membership.outbound.recv() => {
                let frame = match outgoing {
                    Some(Outgoing::Frame(frame)) => frame,
                    Some(Outgoing::Replaced) => {
                        break Ending::ByServer(CloseReason::Replaced);
                    }
                    None => break Ending::ByServer(CloseReason::SlowConsumer),
                };
                // Frames up to the snapshot's sequence number are in the welcome.
                if frame.seq > joined.seq {
                    if !send(&mut socket, Message::Text(frame.text), relay.silence_limit).await {
                        break Ending::Lost;
                    }
                    relay.stats.fanout(frame.published_at.elapsed());
                }
            }
            incoming = socket.recv() => {
                last_heard = Instant::now();
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                        relay.stats.received(Kind::Invalid);
                        break Ending::ByServer(CloseReason::Oversized);
                    }
                    Some(Ok(Message::Text(text))) => {
                        let checked = parse_client_frame(text.as_str()).and_then(|frame| {
                            if role == Role::Spectator {
                                Err(FrameError::SpectatorCannotSend)
                            } else {
                                Ok(frame)
                            }
                        });
                        let kind = match &checked {
                                Ok(frame) if frame.event == ClientEvent::Typing => Kind::Typing,
                                Ok(_) => Kind::Action,
                                Err(_) => Kind::Invalid,
                        };
                        relay.stats.received(kind);
                        match checked {
                            Ok(frame) => match limiter.check_frame(frame.event) {
                                Verdict::Relay => match relay.hub.publish(&room, &me, frame).await {
                                    Ok(()) => {
                                        relay.stats.published(kind);
                                        None
                                    }
                                    Err(error) => {
                                        relay.stats.dropped(DropReason::BackplaneDown);
                                        warn!(%room, %conn, %error, "frame not relayed");
                                        Some(ServerFrame::Error {
                                            code: "unavailable".into(),
                                            message: error.to_string(),
                                        })
                                    }
                                },
                                Verdict::DropTyping => {
                                    relay.stats.dropped(DropReason::RateLimited);
                                    None
                                }
                                Verdict::RefuseAction => {
                                    relay.stats.dropped(DropReason::RateLimited);
                                    Some(ServerFrame::error(&FrameError::RateLimited))
                                }
                                Verdict::Close => break Ending::ByServer(CloseReason::RateLimited),
                            },
                            Err(error) => match refuse(&relay.stats, &limiter, &error) {
                                Some(reply) => Some(reply),
                                None => break Ending::ByServer(CloseReason::TooManyInvalid),
                            },
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        relay.stats.received(Kind::Invalid);
                        match refuse(&relay.stats, &limiter, &FrameError::Binary) {
                            Some(reply) => Some(reply),
                            None => break Ending::ByServer(CloseReason::TooManyInvalid),
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(frame))) => {
                        let clean = frame.is_some_and(|f| f.code == close::NORMAL);
                        break Ending::ByClient { clean };
                    }
                    None => break Ending::Lost,
                    Some(Err(error)) => match read_error(error) {
                        ReadError::Oversized => break Ending::ByServer(CloseReason::Oversized),
                        ReadError::InvalidUtf8 => {
                            relay.stats.dropped(DropReason::Invalid);
                            break Ending::ByServer(CloseReason::InvalidUtf8);
                        }
                        ReadError::Other => break Ending::Lost,
                    },
                };
                if let Some(reply) = reply {
                    if !send(&mut socket, Message::Text(reply.to_json().into()), relay.silence_limit).await {
                        break Ending::Lost;
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > relay.silence_limit {
                    break Ending::ByServer(CloseReason::Heartbeat);
                }
                let ping = send(&mut socket, Message::Ping(Default::default()), relay.silence_limit).await;
                let beat = ServerFrame::Heartbeat.to_json().into();
                if !ping || !send(&mut socket, Message::Text(beat), relay.silence_limit).await {
                    break Ending::Lost;
                }
            }

        }
    };
    match ending {
        Ending::ByClient { clean } => {
            if clean {
                membership.leave_cleanly();
            }
            info!(%room, %conn, clean, "left");
        }
        Ending::Lost => info!(%room, %conn, "lost"),
        Ending::ByServer(why) => {
            relay.stats.closed(why);
            let (code, reason) = close_frame(why);
            info!(%room, %conn, code, reason, "closing");
            drop(membership);
            close_socket(&mut socket, code, reason).await;
        }
    }
}

/// Sends `message`; `false` if the socket failed, or if the client did not
/// take it within `limit` (a reader that stopped reading must not hold its
/// task, and memory, forever).
async fn send(socket: &mut WebSocket, message: Message, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Sends a close frame, then reads until the client answers (or a short
/// timeout), so the socket is not reset with the client's frames unread.
async fn close_socket(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    match tokio::time::timeout(
        CLOSE_HANDSHAKE_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await
    {
        Ok(Ok(())) => {
            let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
        }
        Ok(Err(error)) => debug!(%error, "close frame not sent"),
        Err(_) => debug!("close frame not taken in time"),
    }
}

/// The close code and reason for a seat that was not given.
fn refusal_frame(error: &JoinError) -> (u16, &'static str) {
    match error {
        JoinError::Refused(Refusal::RoomFull) => (close::ROOM_FULL, "room full"),
        JoinError::Refused(Refusal::SpectatorsFull) => (close::SPECTATORS_FULL, "spectators full"),
        JoinError::Backplane(_) => (close::GOING_AWAY, "room unavailable"),
    }
}

/// Counts an invalid frame: the error frame that answers it, or `None` if
/// the connection sent too many and must close.
fn refuse(stats: &Stats, limiter: &ConnectionLimiter, error: &FrameError) -> Option<ServerFrame> {
    stats.dropped(DropReason::Invalid);
    (!limiter.check_invalid()).then(|| ServerFrame::error(error))
}

/// The close code and reason sent for `why`.
fn close_frame(why: CloseReason) -> (u16, &'static str) {
    match why {
        CloseReason::Oversized => (close::MESSAGE_TOO_BIG, "frame too large"),
        CloseReason::InvalidUtf8 => (close::INVALID_PAYLOAD, "text is not UTF-8"),
        CloseReason::TooManyInvalid => (close::TOO_MANY_INVALID, "too many invalid frames"),
        CloseReason::RateLimited => (close::RATE_LIMITED, "too many frames"),
        CloseReason::SlowConsumer => (close::SLOW_CONSUMER, "too slow to read"),
        CloseReason::Heartbeat => (close::HEARTBEAT_TIMEOUT, "no heartbeat"),
        CloseReason::Replaced => (close::REPLACED, "opened in another tab"),
        CloseReason::Shutdown => (close::GOING_AWAY, "server shutting down"),
    }
}

/// Counts an open connection for as long as it lives.
struct OpenConnection<'a>(&'a Stats);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connection_ended();
    }
}

/// Read failures that have their own close code.
enum ReadError {
    Oversized,
    InvalidUtf8,
    Other,
}

fn read_error(error: axum::Error) -> ReadError {
    match error.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => ReadError::Oversized,
        Some(tungstenite::Error::Utf8(_)) => ReadError::InvalidUtf8,
        _ => ReadError::Other,
    }
}
