//! The benchmarks' reference: the smallest axum relay that does the same
//! job on the wire, and nothing else. A socket at `/ws/battle/<room>/`
//! joins the room; every text frame goes, unchanged and unread, to
//! everyone in the room (sender included). No parsing, no validation, no
//! limits, no presence, no metrics; 4 KiB buffers (the issue's reference;
//! `--read-buffer-bytes 1024` reads as the real server does) and
//! `TCP_NODELAY`. It sends one `{"type":"welcome"}` first, because the
//! load generator waits for a welcome, and answers `/readyz`.
//!
//! `cargo build --release --features ssr --bin bare-relay`, then
//! `target/release/bare-relay --addr 127.0.0.1:0`. `scripts/bench.sh` runs
//! each scenario against it and the real server, alternating.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{
        ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        Path, State,
    },
    response::Response,
    routing::get,
    serve::ListenerExt,
    Router,
};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

/// Each room's channel: one sender, a receiver per member.
type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>>;

/// Frames a member may fall behind before it misses some.
const ROOM_QUEUE: usize = 256;
/// The socket's write buffer, and by default its read buffer.
const BUFFER_BYTES: usize = 4096;

#[derive(Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// The socket's read buffer (tungstenite zeroes it before each read).
    #[arg(long, default_value_t = BUFFER_BYTES)]
    read_buffer_bytes: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = Router::new()
        .route("/ws/battle/{room}/", get(upgrade))
        .route("/readyz", get(|| async { "ready" }))
        .with_state((Rooms::default(), args.read_buffer_bytes));
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State((rooms, read_buffer)): State<(Rooms, usize)>,
) -> Response {
    ws.read_buffer_size(read_buffer)
        .write_buffer_size(BUFFER_BYTES)
        .on_upgrade(move |socket| relay(socket, room, rooms))
}

/// Forwards the room's frames to this member and this member's frames to
/// the room, until the socket ends.
async fn relay(socket: WebSocket, room: String, rooms: Rooms) {
    let room_tx = {
        let mut rooms = rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(room.clone())
            .or_insert_with(|| broadcast::channel(ROOM_QUEUE).0)
            .clone()
    };
    let mut room_rx = room_tx.subscribe();
    let (mut sink, mut stream) = socket.split();
    if sink
        .send(Message::Text(r#"{"type":"welcome"}"#.into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let _ = room_tx.send(text);
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                outgoing = room_rx.recv() => match outgoing {
                    Ok(text) => {
                        if sink.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                },
            }
        }
    }
    drop(room_rx);
    let mut rooms = rooms.lock().unwrap_or_else(|e| e.into_inner());
    if room_tx.receiver_count() == 0 {
        rooms.remove(&room);
    }
}
