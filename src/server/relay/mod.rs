//! The WebSocket route `/ws/battle/{room}/`: checks the handshake
//! ([`handshake`]), upgrades, and runs one task per connection
//! ([`session`]), the only code that touches the socket.

mod handshake;
mod session;
mod welcome;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{ConnectInfo, Path, Query, Request, State},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::debug;
use tungstenite::protocol::WebSocketConfig;

use self::handshake::{
    admission_status, admit, client_address, switching_protocols, token_status, JoinQuery,
};
use super::{
    guard::{Admission, OriginPolicy, RateLimits, TrustedProxies},
    hub::Hub,
    state::AppState,
    stats::Stats,
    token::Secret,
};
use crate::protocol::MAX_FRAME_BYTES;

/// Bytes read from the socket at a time, allocated for every connection
/// (axum's default is 128 KiB). A client's frames are under 200 bytes (a
/// name, the longest); a larger one grows the buffer as it needs. Measured:
/// 4 KiB cost 3 KiB more per idle connection than 1 KiB; 512 bytes took
/// 0.8 KiB more off together with a change to the upgrade's callback, since
/// replaced by the session's own task (docs/performance.md, session 11).
const READ_BUFFER_BYTES: usize = 512;
/// Bytes written to the socket at a time.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Most bytes waiting to be written before a send waits for the socket.
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Hard cap on a frame read from the socket. Frames over
/// [`MAX_FRAME_BYTES`] but under this cap are read whole and answered with a
/// clean close (1009); larger ones make the socket fail at once.
const MAX_READ_FRAME_BYTES: usize = 16 * MAX_FRAME_BYTES;
/// The subprotocol the server speaks; a client that offers subprotocols
/// (to carry a token) must offer this one too.
pub const SUBPROTOCOL: &str = "battle-status";
/// Prefix of the subprotocol that carries a join token.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "token.";

/// The WebSocket layer's settings, the same for every connection.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_READ_FRAME_BYTES))
        .max_frame_size(Some(MAX_READ_FRAME_BYTES))
}

/// What every connection shares (through one `Arc`).
#[derive(Debug)]
pub struct Relay {
    /// The rooms of this instance.
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
    /// Who may open a socket now: the process's, each player's and each
    /// address's limits.
    pub admission: Arc<Admission>,
    /// On shutdown, sockets are told to come back within this window.
    pub reconnect_window: Duration,
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
        .route("/ws/battle/{room}/token", get(token_status))
        .route("/ws/battle/{room}/admission", get(admission_status))
}

async fn upgrade(
    Path(room): Path<String>,
    Query(query): Query<JoinQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(relay): State<Arc<Relay>>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    let client = client_address(&relay, peer, headers);
    let accepted = switching_protocols(&request)
        .and_then(|answer| Ok((answer, admit(&room, query, client, headers, &relay)?)));
    let (answer, admission) = match accepted {
        Ok(accepted) => accepted,
        Err(refused) => {
            relay.stats.refused(refused.why);
            debug!(%client, status = %refused.status, reason = %refused.reason, "handshake refused");
            return refused.into_response();
        }
    };
    // The session runs in a task of its own, which takes the connection
    // once hyper has sent the answer.
    let upgrade = hyper::upgrade::on(&mut request);
    relay
        .tasks
        .clone()
        .spawn(session::run(upgrade, admission, relay));
    answer
}
