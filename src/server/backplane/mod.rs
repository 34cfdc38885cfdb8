//! The backplane: how this instance's rooms reach the same rooms on other
//! instances, and where each room's roster (seats, presence, last-known
//! state) and sequence number live, so that every instance sees the same
//! room.
//!
//! Two sides, two traits:
//! - [`Transport`]: an instance subscribes to a room when the room gets its
//!   first local connection and unsubscribes with the last one. Every frame
//!   of a room comes back through the backplane to every subscribed
//!   instance, the publishing one included, into the [`RoomSink`] it
//!   subscribed with: local and remote delivery are one code path.
//! - [`RoomStore`]: seats, presence and frames, numbered in the room's
//!   sequence. Every store builds its roster changes with
//!   [`Change`](super::room::Change) and only decides how to carry them out.
//!   A seat comes with its [`RoomLink`], through which its connection's
//!   frames go to the room without looking the room up again.
//!
//! The backplane owns the interface it delivers into ([`RoomSink`]); the
//! fan-out implements it, so this layer names no type above it.
//!
//! Two implementations: the in-process [`MemoryBus`] (the default; several
//! hubs of one process may share one, as tests do) and the
//! [`RedisBackplane`], through which instances share rooms. The hub holds
//! one as `Arc<dyn Backplane>`, chosen at start-up; room rules
//! ([`Limits`]) are given at construction.

mod memory;
mod redis;

use std::{
    fmt,
    future::{ready, Future, Ready},
    pin::Pin,
    sync::Arc,
};

use futures_util::future::Either;
use thiserror::Error;

pub use self::{
    memory::{MemoryBackplane, MemoryBus},
    redis::{RedisBackplane, RedisSource, RedisTimeouts},
};
pub use super::room::Limits;
use super::room::{JoinRequest, Refusal, Seat};
use crate::protocol::{
    Action, ClientFrame, HistoryEntry, MemberRef, MemberState, PlayerKey, RoomName, ServerFrame,
};

/// What a room store's operation gives: its result at once (the
/// in-process store, which then allocates nothing on a frame's way), or a
/// boxed wait (a call to the broker), so that stores can be chosen at run
/// time.
pub type StoreFuture<'a, T> = Either<Ready<T>, Pin<Box<dyn Future<Output = T> + Send + 'a>>>;

/// A store's result, at once.
pub fn at_once<'a, T>(result: T) -> StoreFuture<'a, T> {
    Either::Left(ready(result))
}

/// A store's result, once `work` is done.
pub fn later<'a, T>(work: impl Future<Output = T> + Send + 'a) -> StoreFuture<'a, T> {
    Either::Right(Box::pin(work))
}

/// Why the backplane could not do something.
#[derive(Debug, Error)]
pub enum BackplaneError {
    /// The broker cannot be reached right now.
    #[error("the message broker is unavailable")]
    Unavailable,
    /// The link to the broker is down, for this reason.
    #[error("{0}")]
    Down(String),
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
    /// The room's history, oldest first (entries after `seq` may be left
    /// out or not: they also arrive live).
    pub history: Vec<HistoryEntry>,
    /// Events numbered up to this may be missing from `history`.
    pub history_floor: u64,
    /// Where the seat's connection publishes its frames.
    pub link: Arc<dyn RoomLink>,
}

/// A seated connection's way to publish to its room: the in-process store
/// keeps the room's state in it, so that a frame takes the room's lock
/// and no other (no lookup, no lock shared by every room).
pub trait RoomLink: Send + Sync + fmt::Debug + 'static {
    /// Publishes `frame`, sent by member `from`, to every instance serving
    /// the room, and records it in the roster. Frames from one caller are
    /// delivered in the order published. What it waits on owns what it
    /// needs, so that the caller's own state is free while it waits.
    fn publish(
        &self,
        from: &MemberRef,
        frame: ClientFrame,
        now: u64,
    ) -> StoreFuture<'static, Result<(), BackplaneError>>;
}

/// Where the backplane delivers a room's frames on this instance.
/// Implemented by the fan-out; called with backplane locks held, so it
/// must never block.
pub trait RoomSink: Send + Sync + 'static {
    /// `frame`, numbered `seq` in its room, for every member here.
    fn deliver(&self, seq: u64, frame: ServerFrame);

    /// The same for a stamped frame whose text, numbered `seq`, is already
    /// written (another instance wrote it; only the number was changed);
    /// `typing_from` is its sender if it is a typing ping.
    fn deliver_text(&self, seq: u64, text: String, typing_from: Option<Arc<str>>);

    /// Connection `conn` lost its seat to a newer connection with the same
    /// key: it must close.
    fn replaced(&self, conn: &str);
}

/// Carries a room's frames to the instances that serve it.
pub trait Transport: Send + Sync + 'static {
    /// Starts delivering the frames of `room` to `sink`. Must not block
    /// (callers may hold locks): transports that need I/O queue it.
    fn subscribe(&self, room: &RoomName, sink: Arc<dyn RoomSink>);

    /// Stops delivering the frames of `room` to this instance. Same rules
    /// as [`subscribe`](Transport::subscribe).
    fn unsubscribe(&self, room: &RoomName);

    /// `Ok` if frames can be published now.
    fn ready(&self) -> Result<(), BackplaneError>;
}

/// Keeps each room's roster and sequence number, and numbers and publishes
/// its frames. Times are the hub's clock: milliseconds since the Unix
/// epoch, comparable across instances.
pub trait RoomStore: Send + Sync + 'static {
    /// Seats a connection in `room` and tells the room.
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        request: JoinRequest,
        now: u64,
    ) -> StoreFuture<'a, Result<Joined, JoinError>>;

    /// Connection `conn` ended, cleanly or not; tells the room. Returns the
    /// deadline of the grace period it started, if any: the caller calls
    /// [`expire`](RoomStore::expire) then.
    fn disconnect<'a>(
        &'a self,
        room: &'a RoomName,
        conn: &'a str,
        clean: bool,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>>;

    /// Frees the seats whose grace period ran out by `now` and tells the
    /// room. Returns the next deadline, if any member is still reconnecting.
    fn expire<'a>(
        &'a self,
        room: &'a RoomName,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>>;

    /// Publishes the judge's verdict `action` about the player whose
    /// private id is `player`, marked as the judge's, to every instance
    /// serving `room`, and records it in the roster.
    fn publish_verdict<'a>(
        &'a self,
        room: &'a RoomName,
        player: &'a PlayerKey,
        action: Action,
        now: u64,
    ) -> StoreFuture<'a, Result<(), VerdictError>>;
}

/// A transport and a room store: what a hub needs.
pub trait Backplane: Transport + RoomStore + fmt::Debug {}

impl<T: Transport + RoomStore + fmt::Debug> Backplane for T {}

/// The backplane a hub goes through.
pub type SharedBackplane = Arc<dyn Backplane>;
