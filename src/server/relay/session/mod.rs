//! One connection's task: joins the room, sends the welcome, then handles
//! one event at a time (frames waiting in its mailbox, the server's
//! shutdown among them, a frame from the client, the heartbeat) until the connection ends, and closes
//! with the code the table gives.

use std::{
    future::Future,
    pin::{pin, Pin},
    sync::Arc,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::{rt::TokioIo, server::conn::auto::upgrade::downcast};
use tokio::{
    net::TcpStream,
    time::{sleep_until, Instant, Sleep},
};
use tracing::{debug, info, warn};
use tungstenite::{Message, Utf8Bytes};

mod heartbeat;
mod incoming;
mod outgoing;
mod socket;

use self::{
    heartbeat::{Beat, Heartbeat},
    outgoing::Batch,
    socket::{close_socket, websocket, within, write, write_raw, Socket},
};

use super::{handshake::Admission, welcome::greeting, Relay};
use crate::{
    protocol::{close, Close, MemberRef, Role, RoomName, ServerFrame},
    server::{
        clock::millis,
        guard::{ConnectionLimiter, Slot},
        hub::{JoinError, Membership},
        room::{JoinRequest, Refusal},
        stats::Stats,
    },
};

/// How a connection ends.
enum Ending {
    /// The client closed: `clean` if it said it was leaving (code 1000).
    ByClient { clean: bool },
    /// The socket failed or vanished.
    Lost,
    /// The server closes, for this reason.
    ByServer(Close),
}

/// What woke the connection's task.
enum Event {
    /// The mailbox has frames (or its end) to write.
    Outgoing,
    Incoming(Option<Result<Message, tungstenite::Error>>),
    Heartbeat,
}

/// A connection with a seat.
struct Session {
    socket: Socket,
    relay: Arc<Relay>,
    room: RoomName,
    role: Role,
    /// This connection's member, with the name the server stamps on its
    /// frames.
    me: MemberRef,
    /// The name comes from the join token: `name` frames are refused.
    name_locked: bool,
    membership: Membership,
    /// Frames numbered up to this are in the welcome.
    snapshot_seq: u64,
    limiter: ConnectionLimiter,
    last_heard: Instant,
    /// When the client was last written a frame (a ping is not one).
    last_written: Instant,
    /// The socket's place in the admission counts, held to the end.
    _slot: Slot,
    /// Counts the connection as open until the session ends.
    _open: OpenConnection,
}

/// Runs an admitted connection to its end.
///
/// What an idle connection keeps is the bulk of its memory, so it is kept
/// small (docs/performance.md): the upgrade, the join and the welcome run
/// boxed, and are gone once the session's loop starts; the session is one
/// allocation.
/// The events of nearly every wake-up (frames to write, a frame read) are
/// handled in place with small states, and only what has to wait (a full
/// socket, a broker, a reply, the heartbeat) is boxed while it runs: a box
/// for each event was an allocation and a copy of a kilobyte, the largest
/// share of the relay's own work (docs/performance.md). An `async fn` would keep
/// its arguments for the connection's life, and an event's state would
/// take room in every connection whether it is handling one or not.
pub fn run(
    upgrade: OnUpgrade,
    admission: Admission,
    relay: Arc<Relay>,
) -> impl Future<Output = ()> {
    let opening = Box::pin(Session::open(upgrade, admission, relay));
    async move {
        if let Some(session) = opening.await {
            session.serve().await;
        }
    }
}

impl Session {
    /// Takes the connection once hyper has answered the handshake, joins
    /// the room and sends the welcome; `None` if the connection ended there
    /// (refused, or gone).
    async fn open(
        upgrade: OnUpgrade,
        admission: Admission,
        relay: Arc<Relay>,
    ) -> Option<Box<Self>> {
        let (mut connection, early) = match upgrade.await.map(downcast::<TokioIo<TcpStream>>) {
            Ok(Ok(parts)) => (parts.io.into_inner(), parts.read_buf),
            Ok(Err(_)) => {
                warn!("an upgraded connection that is not a TCP stream, dropped");
                return None;
            }
            Err(error) => {
                debug!(%error, "upgrade failed");
                return None;
            }
        };
        relay.stats.connection_opened();
        let open = OpenConnection(relay.stats.clone());
        let Admission {
            room,
            role,
            key,
            name,
            name_locked,
            slot,
            since,
        } = admission;
        let conn = uuid::Uuid::new_v4().simple().to_string();
        let request = JoinRequest {
            conn: conn.clone(),
            role,
            key,
            new_id: uuid::Uuid::new_v4().simple().to_string(),
            name,
        };
        let (membership, joined) = match relay.hub.join(&room, request).await {
            Ok(joined) => joined,
            Err(error) => {
                info!(%room, %conn, %error, "refused");
                let close = refusal_close(&error);
                let mut socket = websocket(connection, early).await;
                close_socket(&mut socket, close.code(), close.reason().to_owned()).await;
                return None;
            }
        };
        let me = joined.seat.member.clone();
        info!(%room, %conn, member = %me.id, ?role, resumed = joined.seat.resumed, "joined");
        let snapshot_seq = joined.seq;
        let greeting = greeting(&relay, &room, role, &me.id, name_locked, joined, &since);
        write(relay.silence_limit, write_raw(&mut connection, greeting))
            .await
            .ok()?;
        let socket = websocket(connection, early).await;
        Some(Box::new(Session {
            socket,
            limiter: ConnectionLimiter::new(&relay.rates),
            relay,
            room,
            role,
            me,
            name_locked,
            membership,
            snapshot_seq,
            last_heard: Instant::now(),
            last_written: Instant::now(),
            _slot: slot,
            _open: open,
        }))
    }

    /// Handles events until the connection ends, then ends it.
    async fn serve(mut self: Box<Self>) {
        let period = self.relay.heartbeat;
        let first = Instant::now() + first_heartbeat(period, fastrand::f64());
        // The first heartbeat falls at its spread point whatever the
        // welcome: as if the welcome had gone out a period before it.
        self.last_written = first.checked_sub(period).unwrap_or(self.last_written);
        // In the task itself, next to the loop's state that every wake-up
        // reads: a box of its own was one more cache miss per frame.
        let mut heartbeat = pin!(sleep_until(first));
        let ending = loop {
            let step = match self.next_event(heartbeat.as_mut()).await {
                Event::Outgoing => self.on_outgoing(Batch::new()).await,
                Event::Incoming(incoming) => match self.read(incoming) {
                    Ok(asked) => self.on_incoming(asked).await,
                    Err(ending) => Err(ending),
                },
                Event::Heartbeat => Box::pin(self.on_heartbeat(heartbeat.as_mut())).await,
            };
            if let Err(ending) = step {
                break ending;
            }
        };
        Box::pin(self.end(ending)).await;
    }

    /// Biased, outgoing first: a connection's mailbox is drained before it
    /// may read more, so a fast sender cannot outrun its own echoes. The
    /// server's shutdown comes through the mailbox too.
    async fn next_event(&mut self, heartbeat: Pin<&mut Sleep>) -> Event {
        tokio::select! {
            biased;
            () = self.membership.outbound.ready() => Event::Outgoing,
            incoming = self.socket.next() => Event::Incoming(incoming),
            () = heartbeat => Event::Heartbeat,
        }
    }

    /// The heartbeat's timer fired: closes a silent client, pings a quiet
    /// one, sends a heartbeat frame if nothing else went out for a period,
    /// and sets the timer's next firing.
    async fn on_heartbeat(&mut self, timer: Pin<&mut Sleep>) -> Result<(), Ending> {
        let rules = Heartbeat {
            period: self.relay.heartbeat,
            silence_limit: self.relay.silence_limit,
        };
        let now = Instant::now();
        let Beat::Due { ping, frame, next } = rules.beat(now, self.last_heard, self.last_written)
        else {
            return Err(Ending::ByServer(Close::Heartbeat));
        };
        timer.reset(next);
        if ping {
            // The ping and the frame in one write: one syscall and one segment.
            let ping = Message::Ping(Default::default());
            write(self.relay.silence_limit, self.socket.feed(ping)).await?;
        }
        if frame {
            self.send(ServerFrame::Heartbeat.to_json().into()).await
        } else if ping {
            write(self.relay.silence_limit, self.socket.flush()).await
        } else {
            Ok(())
        }
    }

    /// Sends a text frame.
    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Ending> {
        write(
            self.relay.silence_limit,
            self.socket.send(Message::Text(text)),
        )
        .await?;
        self.last_written = Instant::now();
        Ok(())
    }

    async fn end(mut self: Box<Self>, ending: Ending) {
        let (room, conn) = (&self.room, self.membership.conn().clone());
        match ending {
            Ending::ByClient { clean } => {
                if clean {
                    self.membership.leave_cleanly();
                }
                info!(%room, %conn, clean, "left");
            }
            Ending::Lost => info!(%room, %conn, "lost"),
            Ending::ByServer(close) => {
                self.relay.stats.closed(close);
                info!(%room, %conn, code = close.code(), reason = close.reason(), "closing");
                drop(self.membership);
                let reason = match close {
                    // Spread the reconnections of a restart over the window.
                    Close::Shutdown => {
                        let window = millis(self.relay.reconnect_window);
                        close::with_retry_hint(close, fastrand::u64(0..window.max(1)))
                    }
                    _ => close.reason().to_owned(),
                };
                close_socket(&mut self.socket, close.code(), reason).await;
            }
        }
    }
}

/// When a connection's first heartbeat is due, `unit` (from 0 to 1) into
/// the second half of its period: sockets opened together (a classroom, a
/// server's restart) spread their heartbeats over the period rather than
/// sending them all at the same moment, each period.
fn first_heartbeat(period: Duration, unit: f64) -> Duration {
    period.mul_f64(0.5 + unit.clamp(0.0, 1.0) / 2.0)
}

/// The close for a seat that was not given.
fn refusal_close(error: &JoinError) -> Close {
    match error {
        JoinError::Refused(Refusal::RoomFull) => Close::RoomFull,
        JoinError::Refused(Refusal::SpectatorsFull) => Close::SpectatorsFull,
        JoinError::Backplane(_) => Close::RoomUnavailable,
    }
}

/// Counts an open connection for as long as it lives.
struct OpenConnection(Arc<Stats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connection_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_of_sockets_opened_together_are_spread_over_the_second_half_of_a_period() {
        let period = Duration::from_secs(15);
        assert_eq!(first_heartbeat(period, 0.0), Duration::from_millis(7_500));
        assert_eq!(first_heartbeat(period, 0.5), Duration::from_millis(11_250));
        assert_eq!(first_heartbeat(period, 1.0), period);
        assert_eq!(
            first_heartbeat(period, 7.0),
            period,
            "never later than a period"
        );
    }

    /// What an idle connection holds is its task's future and its session:
    /// an `async fn`'s arguments, or an event's waiting state kept inline,
    /// would put kilobytes back into each of 18,000 connections (the join's
    /// state made it 6.8 KB, a reply's wait 400 bytes, docs/performance.md).
    /// The loop keeps the heartbeat's timer (96 bytes) in place, rather
    /// than in a box of its own.
    #[test]
    fn an_idle_connection_holds_a_small_task_and_one_session() {
        fn task_size<A, B, C, F>(_: fn(A, B, C) -> F) -> usize {
            size_of::<F>()
        }
        fn loop_size<F>(_: fn(Box<Session>) -> F) -> usize {
            size_of::<F>()
        }
        assert!(task_size(run) <= 384, "{} bytes", task_size(run));
        assert!(
            loop_size(Session::serve) <= 384,
            "{} bytes",
            loop_size(Session::serve)
        );
        assert!(
            size_of::<Session>() <= 768,
            "{} bytes",
            size_of::<Session>()
        );
    }
}
