//! The backplane: how a node's rooms reach the same rooms on other nodes,
//! and where each room's roster (seats, presence, last-known state) and
//! sequence number live, so that every node sees the same room.
//!
//! A node subscribes to a room when the room gets its first local
//! connection and unsubscribes with the last one. Every frame and presence
//! event of a room comes back through the backplane to every subscribed
//! node, the publishing node included, so local and remote delivery are one
//! code path.
//!
//! Two implementations: the in-process [`MemoryBus`] (the default; several
//! hubs of one process may share one, as tests do) and the
//! [`RedisBackplane`], through which instances share rooms. They are chosen
//! at start-up through [`AnyBackplane`], which delegates (traits returning
//! `impl Future` are not object safe).

mod memory;
mod redis;

use std::{future::Future, sync::Arc};

use thiserror::Error;

pub use self::redis::RedisBackplane;
pub use memory::{MemoryBackplane, MemoryBus};

use super::{
    hub::{Delivery, LocalRoom, Outbound},
    roster::{JoinRequest, Limits, Refusal, Seat},
};
use crate::protocol::{
    Action, ClientFrame, MemberRef, MemberState, PlayerKey, Presence, PresenceEvent, RoomName,
    ServerFrame,
};

/// Why the backplane could not do something.
#[derive(Debug, Error)]
pub enum BackplaneError {
    /// The broker cannot be reached right now.
    #[error("the message broker is unavailable")]
    Unavailable,
}

/// Why a connection got no seat.
#[derive(Debug, Error)]
pub enum JoinError {
    /// The room said no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The room could not be reached.
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
}

/// Why a verdict was not published.
#[derive(Debug, Error)]
pub enum VerdictError {
    /// No player with that id holds a seat in the battle.
    #[error("no player with this id in this battle")]
    NoSuchPlayer,
    /// The room could not be reached.
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
}

/// A seat, with the room as it was when the seat was given.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The seat.
    pub seat: Seat,
    /// The room's sequence number at the snapshot: frames numbered up to
    /// this are already in `members`.
    pub seq: u64,
    /// Everyone in the room, the new member included.
    pub members: Vec<MemberState>,
}

/// What a node hands its members for `frame`, numbered `seq` in its room:
/// serialised once for all of them.
fn numbered(frame: ServerFrame, seq: u64) -> Delivery {
    let frame = frame.with_seq(seq);
    let text = frame.to_json();
    Delivery::Frame(match frame {
        ServerFrame::Typing(stamped) => Outbound::typing(text, seq, stamped.from.into()),
        _ => Outbound::lasting(text, seq),
    })
}

/// A presence frame, not numbered yet.
fn presence(event: PresenceEvent, member: MemberRef) -> ServerFrame {
    ServerFrame::Presence(Presence {
        event,
        member,
        seq: 0,
    })
}

/// Carries room frames between the nodes that serve a room, and keeps each
/// room's roster. Times are the hub's clock: milliseconds since the Unix
/// epoch, comparable across instances.
pub trait Backplane: Send + Sync + 'static {
    /// Starts delivering the frames of `room` to `sink`. Called under the
    /// hub's lock, so it must not block: brokers that need I/O queue it.
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>);

    /// Stops delivering the frames of `room` to this node. Same rules as
    /// [`subscribe`](Backplane::subscribe).
    fn unsubscribe(&self, room: &RoomName);

    /// `Ok` if frames can be published now.
    fn ready(&self) -> Result<(), BackplaneError>;

    /// Seats a connection in `room` and tells the room.
    fn join(
        &self,
        room: &RoomName,
        request: JoinRequest,
        limits: Limits,
        now: u64,
    ) -> impl Future<Output = Result<Joined, JoinError>> + Send;

    /// Connection `conn` ended, cleanly or not; tells the room. Returns the
    /// deadline of the grace period it started, if any: the caller calls
    /// [`expire`](Backplane::expire) then.
    fn disconnect(
        &self,
        room: &RoomName,
        conn: &str,
        clean: bool,
        limits: Limits,
        now: u64,
    ) -> impl Future<Output = Result<Option<u64>, BackplaneError>> + Send;

    /// Frees the seats whose grace period ran out by `now` and tells the
    /// room. Returns the next deadline, if any member is still reconnecting.
    fn expire(
        &self,
        room: &RoomName,
        now: u64,
    ) -> impl Future<Output = Result<Option<u64>, BackplaneError>> + Send;

    /// Publishes `frame`, sent by member `from`, to every node serving
    /// `room`, and records it in the roster. Frames from one caller are
    /// delivered in the order published.
    fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
        now: u64,
    ) -> impl Future<Output = Result<(), BackplaneError>> + Send;

    /// Publishes the judge's verdict `action` about the player whose
    /// private id is `player`, marked as the judge's, to every node serving
    /// `room`, and records it in the roster.
    fn publish_verdict(
        &self,
        room: &RoomName,
        player: &PlayerKey,
        action: Action,
        now: u64,
    ) -> impl Future<Output = Result<(), VerdictError>> + Send;
}

/// The backplane chosen in the configuration.
#[derive(Debug)]
pub enum AnyBackplane {
    /// In-process: rooms are shared only by hubs of this process.
    Memory(MemoryBackplane),
    /// Redis: rooms are shared by every instance on the same Redis server.
    Redis(RedisBackplane),
}

/// Calls the same method on whichever backplane was chosen.
macro_rules! delegate {
    ($self:ident, $backplane:ident => $call:expr) => {
        match $self {
            Self::Memory($backplane) => $call,
            Self::Redis($backplane) => $call,
        }
    };
}

impl Backplane for AnyBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>) {
        delegate!(self, backplane => backplane.subscribe(room, sink))
    }

    fn unsubscribe(&self, room: &RoomName) {
        delegate!(self, backplane => backplane.unsubscribe(room))
    }

    fn ready(&self) -> Result<(), BackplaneError> {
        delegate!(self, backplane => backplane.ready())
    }

    async fn join(
        &self,
        room: &RoomName,
        request: JoinRequest,
        limits: Limits,
        now: u64,
    ) -> Result<Joined, JoinError> {
        delegate!(self, backplane => backplane.join(room, request, limits, now).await)
    }

    async fn disconnect(
        &self,
        room: &RoomName,
        conn: &str,
        clean: bool,
        limits: Limits,
        now: u64,
    ) -> Result<Option<u64>, BackplaneError> {
        delegate!(self, backplane => backplane.disconnect(room, conn, clean, limits, now).await)
    }

    async fn expire(&self, room: &RoomName, now: u64) -> Result<Option<u64>, BackplaneError> {
        delegate!(self, backplane => backplane.expire(room, now).await)
    }

    async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
        now: u64,
    ) -> Result<(), BackplaneError> {
        delegate!(self, backplane => backplane.publish(room, from, frame, now).await)
    }

    async fn publish_verdict(
        &self,
        room: &RoomName,
        player: &PlayerKey,
        action: Action,
        now: u64,
    ) -> Result<(), VerdictError> {
        delegate!(self, backplane => backplane.publish_verdict(room, player, action, now).await)
    }
}
