//! The WebSocket route `/ws/battle/{room}/`: checks the room, upgrades, and
//! runs one task per connection. This task is the only code that touches
//! the socket.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        Path, State, WebSocketUpgrade,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tracing::{debug, info, warn};

use super::{hub::Hub, stats::Stats, AppState};
use crate::protocol::{
    close, parse_client_frame, FrameError, RoomName, ServerFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION,
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
}

/// The relay's routes, with and without the original trailing slash.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/battle/{room}", get(upgrade))
        .route("/ws/battle/{room}/", get(upgrade))
}

async fn upgrade(
    Path(room): Path<String>,
    State(relay): State<Relay>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_READ_FRAME_BYTES)
        .max_frame_size(MAX_READ_FRAME_BYTES)
        .on_upgrade(move |socket| connection(socket, room, relay))
}

/// Why a connection ended, when the server ends it.
enum Ending {
    /// The peer closed, or the socket failed: nothing more to send.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, &'static str),
}

async fn connection(mut socket: WebSocket, room: RoomName, relay: Relay) {
    let member = uuid::Uuid::new_v4().simple().to_string();
    relay.stats.connection();
    info!(%room, %member, "joined");
    let mut membership = relay.hub.join(&room, &member);
    let welcome = ServerFrame::Welcome {
        protocol: PROTOCOL_VERSION,
        room: room.clone(),
        you: member.clone(),
    };
    let mut ending = match socket.send(Message::Text(welcome.to_json().into())).await {
        Ok(()) => Ending::Gone,
        Err(_) => return,
    };
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                        relay.stats.frame_received();
                        relay.stats.oversized();
                        ending = Ending::Close(close::MESSAGE_TOO_BIG, "frame too large");
                        break;
                    }
                    Some(Ok(Message::Text(text))) => {
                        relay.stats.frame_received();
                        match parse_client_frame(text.as_str()) {
                            Ok(frame) => match relay.hub.publish(&room, &member, frame).await {
                                Ok(()) => {
                                    relay.stats.frame_published();
                                    None
                                }
                                Err(error) => {
                                    relay.stats.publish_failure();
                                    warn!(%room, %member, %error, "frame not relayed");
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
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        if is_oversized(error) {
                            relay.stats.oversized();
                            ending = Ending::Close(close::MESSAGE_TOO_BIG, "frame too large");
                        }
                        break;
                    }
                };
                if let Some(reply) = reply {
                    if socket.send(Message::Text(reply.to_json().into())).await.is_err() {
                        break;
                    }
                }
            }
            outbound = membership.outbound.recv() => match outbound {
                Some(frame) => {
                    if socket.send(Message::Text(frame.text)).await.is_err() {
                        break;
                    }
                }
                None => {
                    ending = Ending::Close(close::SLOW_CONSUMER, "too slow to read");
                    break;
                }
            },
        }
    }
    drop(membership);
    if let Ending::Close(code, reason) = ending {
        info!(%room, %member, code, reason, "closing");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        match socket.send(Message::Close(Some(frame))).await {
            // Reads until the client answers, so the socket is not reset
            // with the client's last frames unread.
            Ok(()) => {
                let drain = async { while let Some(Ok(_)) = socket.recv().await {} };
                let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
            }
            Err(error) => debug!(%room, %member, %error, "close frame not sent"),
        }
    }
    info!(%room, %member, "left");
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
