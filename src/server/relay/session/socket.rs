//! A connection's socket: the WebSocket layer on the TCP stream hyper
//! upgraded, the welcome written before it, and writes and closes bounded
//! in time.

use std::{
    future::{poll_fn, Future},
    pin::pin,
    task::Poll,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;
use tungstenite::{
    protocol::{
        frame::{
            coding::{Data, OpCode},
            Frame,
        },
        CloseFrame, Role as Side,
    },
    Message,
};

use super::{super::socket_config, Ending};
use crate::protocol::ServerFrame;

/// A connection's socket: WebSocket frames straight over the TCP stream
/// that hyper upgraded (not through its boxed, rewinding `Upgraded`, a
/// pointer chased and two layers crossed at every read and write).
pub(super) type Socket = WebSocketStream<TcpStream>;

/// How long the server waits for the client's answer to its close frame.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The WebSocket layer on an upgraded connection, the server's side;
/// `early` is what the client sent after its handshake that hyper already
/// read (its first frames, if it did not wait for the answer). Copied: it
/// is a slice of hyper's read buffer (8 KiB and more), which the WebSocket
/// layer would otherwise keep as its own for the connection's life.
pub(super) async fn websocket(connection: TcpStream, early: Bytes) -> Socket {
    Socket::from_partially_read(
        connection,
        early.to_vec(),
        Side::Server,
        Some(socket_config()),
    )
    .await
}

/// Writes `frames` straight to the connection, before the WebSocket layer
/// takes it: tungstenite's write buffer keeps the size of the most it ever
/// held, and a welcome with the room's history is by far the largest thing
/// a connection is sent (tens of kilobytes with a full history), which
/// every connection would keep for its life (docs/performance.md).
pub(super) async fn write_raw(
    connection: &mut (impl AsyncWrite + Unpin),
    frames: Vec<ServerFrame>,
) -> Result<(), tungstenite::Error> {
    let mut bytes = Vec::new();
    for frame in frames {
        Frame::message(frame.to_json(), OpCode::Data(Data::Text), true).format(&mut bytes)?;
    }
    Ok(connection.write_all(&bytes).await?)
}

/// Waits for a write to the socket; the connection is lost if it failed,
/// or if the client did not take it within `limit` (a reader that stopped
/// reading must not hold its task, and memory, forever).
pub(super) async fn write<E>(
    limit: Duration,
    write: impl Future<Output = Result<(), E>>,
) -> Result<(), Ending> {
    match within(limit, write).await {
        Some(Ok(())) => Ok(()),
        _ => Err(Ending::Lost),
    }
}

/// What `write` gives, or `None` if it takes longer than `limit`. The timer
/// is armed, boxed, only if the write has to wait: most find room in the
/// socket's buffer at once, and a timer for each is a measurable share of
/// the relay's work (kept inline, it would be held in every connection).
pub(super) async fn within<T>(limit: Duration, write: impl Future<Output = T>) -> Option<T> {
    let mut write = pin!(write);
    match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        Poll::Ready(done) => Some(done),
        Poll::Pending => Box::pin(tokio::time::timeout(limit, write)).await.ok(),
    }
}

/// Sends a close frame, then reads until the client answers (or a short
/// timeout), so the socket is not reset with the client's frames unread.
pub(super) async fn close_socket(socket: &mut Socket, code: u16, reason: String) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    match tokio::time::timeout(
        CLOSE_HANDSHAKE_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await
    {
        Ok(Ok(())) => {
            let drain = async { while let Some(Ok(_)) = socket.next().await {} };
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
        }
        Ok(Err(error)) => debug!(%error, "close frame not sent"),
        Err(_) => debug!("close frame not taken in time"),
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_is_done_at_once_or_in_time_is_kept_and_one_that_hangs_is_given_up() {
        let limit = Duration::from_secs(5);
        assert_eq!(within(limit, async { 7 }).await, Some(7));
        let in_time = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            8
        };
        assert_eq!(within(limit, in_time).await, Some(8));
        let start = Instant::now();
        assert_eq!(within(limit, pending::<u8>()).await, None);
        assert_eq!(start.elapsed(), limit);
    }

    #[tokio::test]
    async fn the_greeting_written_before_the_websocket_layer_reads_as_its_frames_in_order() {
        // Payload lengths in each of the frame header's three encodings.
        let error = |length| ServerFrame::Error {
            code: "test".into(),
            message: "m".repeat(length),
        };
        let frames = vec![ServerFrame::Heartbeat, error(500), error(70_000)];
        let texts: Vec<String> = frames.iter().map(ServerFrame::to_json).collect();
        let mut wire = Vec::new();
        write_raw(&mut wire, frames).await.expect("written");
        let mut client =
            tungstenite::WebSocket::from_raw_socket(std::io::Cursor::new(wire), Side::Client, None);
        for text in texts {
            assert_eq!(client.read().expect("a frame"), Message::text(text));
        }
    }
}
