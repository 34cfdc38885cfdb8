//! The WebSocket route `/ws/battle/{room}/`: checks the room and the query,
//! upgrades, and runs one task per connection. This task is the only code
//! that touches the socket.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        Path, Query, State, WebSocketUpgrade,
    },
    http::StatusCode,
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
    hub::{Hub, Outgoing},
    roster::{JoinRequest, Refusal},
    stats::Stats,
    AppState,
};
use crate::protocol::{
    close, parse_client_frame, FrameError, PlayerKey, Role, RoomName, ServerFrame, Welcome,
    MAX_FRAME_BYTES, PROTOCOL_VERSION,
};

/// Bytes read from the socket at a time (axum's default is 128 KiB a
/// connection; frames here are tiny).
const READ_BUFFER_BYTES: usize = 4 * 1024;
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
}

/// The relay's routes, with and without the original trailing slash.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/battle/{room}", get(upgrade))
        .route("/ws/battle/{room}/", get(upgrade))
}

/// The query of the socket URL; both optional.
#[derive(Debug, Deserialize)]
struct JoinQuery {
    /// `player` (default) or `spectator`.
    role: Option<String>,
    /// The tab's private key, to take its seat back after a reconnection.
    player: Option<String>,
}

async fn upgrade(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    State(relay): State<Relay>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let role = match query.role.as_deref().map(Role::parse) {
        None => Role::Player,
        Some(Some(role)) => role,
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                "role is \"player\" or \"spectator\"",
            )
                .into_response()
        }
    };
    let key = match query.player.as_deref().map(PlayerKey::parse) {
        None => None,
        Some(Some(key)) => Some(key),
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                "player is 16 to 64 characters of letters, digits, '-' and '_'",
            )
                .into_response()
        }
    };
    let tasks = relay.tasks.clone();
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_READ_FRAME_BYTES)
        .max_frame_size(MAX_READ_FRAME_BYTES)
        .on_upgrade(move |socket| tasks.track_future(connection(socket, room, role, key, relay)))
}

/// How a connection ends.
enum Ending {
    /// The client closed: `clean` if it said it was leaving (code 1000).
    ByClient { clean: bool },
    /// The socket failed or vanished.
    Lost,
    /// The server closes with this code and reason.
    ByServer(u16, &'static str),
}

async fn connection(
    mut socket: WebSocket,
    room: RoomName,
    role: Role,
    key: Option<PlayerKey>,
    relay: Relay,
) {
    relay.stats.connection();
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
            let code = match error {
                JoinError::Refused(Refusal::RoomFull) => close::ROOM_FULL,
                JoinError::Refused(Refusal::SpectatorsFull) => close::SPECTATORS_FULL,
                JoinError::Backplane(_) => close::GOING_AWAY,
            };
            close_socket(&mut socket, code, refusal_reason(&error)).await;
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
    if socket
        .send(Message::Text(welcome.to_json().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut heartbeat = interval_at(Instant::now() + relay.heartbeat, relay.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let ending = loop {
        tokio::select! {
            incoming = socket.recv() => {
                last_heard = Instant::now();
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                        relay.stats.frame_received();
                        relay.stats.oversized();
                        break Ending::ByServer(close::MESSAGE_TOO_BIG, "frame too large");
                    }
                    Some(Ok(Message::Text(text))) => {
                        relay.stats.frame_received();
                        match parse_client_frame(text.as_str()) {
                            Ok(_) if role == Role::Spectator => {
                                Some(refuse(&relay.stats, &FrameError::SpectatorCannotSend))
                            }
                            Ok(frame) => match relay.hub.publish(&room, &me, frame).await {
                                Ok(()) => {
                                    relay.stats.frame_published();
                                    None
                                }
                                Err(error) => {
                                    relay.stats.publish_failure();
                                    warn!(%room, %conn, %error, "frame not relayed");
                                    Some(ServerFrame::Error {
                                        code: "unavailable".into(),
                                        message: error.to_string(),
                                    })
                                }
                            },
                            Err(error) => Some(refuse(&relay.stats, &error)),
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        relay.stats.frame_received();
                        Some(refuse(&relay.stats, &FrameError::Binary))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(frame))) => {
                        let clean = frame.is_some_and(|f| f.code == close::NORMAL);
                        break Ending::ByClient { clean };
                    }
                    None => break Ending::Lost,
                    Some(Err(error)) => {
                        if is_oversized(error) {
                            relay.stats.oversized();
                            break Ending::ByServer(close::MESSAGE_TOO_BIG, "frame too large");
                        }
                        break Ending::Lost;
                    }
                };
                if let Some(reply) = reply {
                    if socket.send(Message::Text(reply.to_json().into())).await.is_err() {
                        break Ending::Lost;
                    }
                }
            }
            outgoing = membership.outbound.recv() => {
                let frame = match outgoing {
                    Some(Outgoing::Frame(frame)) => frame,
                    Some(Outgoing::Replaced) => {
                        break Ending::ByServer(close::REPLACED, "opened in another tab");
                    }
                    None => break Ending::ByServer(close::SLOW_CONSUMER, "too slow to read"),
                };
                // Frames up to the snapshot's sequence number are in the welcome.
                if frame.seq > joined.seq && socket.send(Message::Text(frame.text)).await.is_err() {
                    break Ending::Lost;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > relay.silence_limit {
                    break Ending::ByServer(close::HEARTBEAT_TIMEOUT, "no heartbeat");
                }
                let ping = socket.send(Message::Ping(Default::default())).await;
                let beat = socket.send(Message::Text(ServerFrame::Heartbeat.to_json().into())).await;
                if ping.is_err() || beat.is_err() {
                    break Ending::Lost;
                }
            }
            () = relay.shutdown.cancelled() => {
                break Ending::ByServer(close::GOING_AWAY, "server shutting down");
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
        Ending::ByServer(code, reason) => {
            info!(%room, %conn, code, reason, "closing");
            drop(membership);
            close_socket(&mut socket, code, reason).await;
        }
    }
}

/// Sends a close frame, then reads until the client answers (or a short
/// timeout), so the socket is not reset with the client's frames unread.
async fn close_socket(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    match socket.send(Message::Close(Some(frame))).await {
        Ok(()) => {
            let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
        }
        Err(error) => debug!(%error, "close frame not sent"),
    }
}

fn refusal_reason(error: &JoinError) -> &'static str {
    match error {
        JoinError::Refused(Refusal::RoomFull) => "room full",
        JoinError::Refused(Refusal::SpectatorsFull) => "spectators full",
        JoinError::Backplane(_) => "room unavailable",
    }
}

fn refuse(stats: &Stats, error: &FrameError) -> ServerFrame {
    stats.frame_invalid();
    ServerFrame::error(error)
}

fn is_oversized(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
