//! The Redis backplane: instances share rooms through one Redis server.
//!
//! For room `r`, Redis holds (names in [`keys`]):
//! - the hash `battle:room:r`: `roster` (the [`Roster`] as JSON), `v` (its
//!   version, for compare-and-set), `seq` (the room's sequence number), and
//!   per member `a:<id>` (last action) and `t:<id>` (last typing ping, ms
//!   since the epoch), which frames write without reading the roster, and
//!   per seated connection `n:<conn>` (the instance it is on), and `sole`
//!   (the instance all of them are on, if one). It expires
//!   when no instance has served the room for the room TTL, so nothing is
//!   left behind by instances that die.
//! - the channel `battle:room:r`: `<seq>|<server frame>` for each numbered
//!   frame, `r|<conn>` when connection `conn` lost its seat to a newer
//!   one, and `h|<instance>` when an instance asks the room's sole one to
//!   hand the room over ([`codec`]).
//! - per live instance, `battle:node:<id>`, refreshed while it runs.
//!
//! The parts (besides [`source`], where Redis is and the calls' deadlines,
//! [`rooms`], the room store's operations, and [`frames`], this instance's
//! frame ids):
//! - [`store`]: roster changes read the roster, apply the pure
//!   [`Change`](crate::server::room::Change) rules, and commit with a Lua
//!   script (`scripts/commit.lua`) only if the version did not move,
//!   numbering and publishing their presence frames in the same atomic
//!   step. A typing ping or an action is one script call
//!   (`scripts/publish.lua`) that numbers, records and publishes it. Every
//!   frame comes back through the subscription, to the publishing instance
//!   too: one delivery path for rooms that several instances serve.
//! - [`local_first`] (the rules) and [`numbering`] (the instance's side):
//!   a room whose connections are all on this instance (`sole` in its
//!   hash) is numbered and delivered here without waiting on Redis, and
//!   written to Redis behind, in order; another instance that wants in
//!   asks for a handover on the room's channel (`h|<id>`).
//! - [`link`]: one pub/sub connection per instance, owned by the backplane
//!   (aborted when it is dropped), subscribes to the rooms that have local
//!   connections and hands their messages to the rooms' sinks; commands go
//!   through redis-rs's reconnecting [`ConnectionManager`].
//! - [`upkeep`]: while the link is up, refreshes the rooms' keys, says this
//!   instance is alive, counts as dropped the players of instances that
//!   stopped saying so (they crashed), and frees the seats whose grace
//!   period another instance started, in case it is gone.
//! - [`offline`]: while the link is down, rooms keep working for this
//!   instance's own members (frames numbered after the last one seen,
//!   counted as unpublished, their effect remembered per member),
//!   disconnections are queued, and joins and verdicts are refused. When
//!   the link is back it replays the queue, seats this instance's members
//!   again if Redis lost them, writes what was remembered, and publishes a
//!   fresh snapshot to each of its rooms before the instance says it is
//!   ready.

mod codec;
mod frames;
mod keys;
mod link;
mod liveness;
mod local_first;
mod numbering;
mod offline;
mod rooms;
mod source;
mod store;
mod upkeep;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use redis::{aio::ConnectionManager, ErrorKind, RedisError, ServerErrorKind};
use std::sync::atomic::AtomicU64;
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};

pub use self::source::{RedisSource, RedisTimeouts};
use self::{
    frames::RecentFrames,
    offline::{QueuedDisconnect, Subscription},
    source::Source,
    store::Scripts,
};
use super::{BackplaneError, RoomSink, Transport};
use crate::{
    protocol::{MemberRef, RoomName},
    server::{
        clock::{millis, Clock},
        room::{JoinRequest, Limits, Roster},
        stats::Stats,
        timers::Timers,
    },
};

/// How long a room's state stays in Redis once no instance serves it (plus
/// the grace period, so that a reconnecting member's seat outlives it).
const ROOM_TTL: Duration = Duration::from_secs(60);

/// A seat held by a connection of this instance.
#[derive(Debug, Clone)]
struct LocalSeat {
    room: RoomName,
    request: JoinRequest,
    member: MemberRef,
}

/// This instance's side of the Redis backplane, shared by the handle, the
/// link task and its upkeep.
struct Instance {
    source: Source,
    /// The command connection, and the master address it goes to.
    commands: Mutex<Option<(String, ConnectionManager)>>,
    /// Subscribed, resynchronised, and ready to publish.
    up: AtomicBool,
    /// Why the link is down, while it is.
    down_reason: Mutex<String>,
    /// A Redis call timed out or its connection broke: the link task
    /// drops the link and reconnects.
    suspect: Notify,
    timeouts: RedisTimeouts,
    /// Numbers this instance's frame ids.
    next_frame: AtomicU64,
    recent_frames: Mutex<RecentFrames>,
    // Lock order: `rooms`, then a subscription's `log`, then the sink's
    // locks; `seats` and `queued` are leaves. Nothing awaited while held.
    rooms: Mutex<HashMap<RoomName, Arc<Subscription>>>,
    /// Seats of this instance's connections, by connection id.
    seats: Mutex<HashMap<String, LocalSeat>>,
    queued: Mutex<Vec<QueuedDisconnect>>,
    /// The set of rooms changed: the link task subscribes or unsubscribes.
    changed: Notify,
    /// Rooms with a grace period running, watched in case the instance
    /// that started it is gone.
    grace: Arc<Timers<RoomName>>,
    stats: Arc<Stats>,
    clock: Clock,
    limits: Limits,
    room_ttl_ms: u64,
    /// This instance's id, as recorded beside each of its seats.
    node: String,
    /// How long this instance counts as alive after its last heartbeat.
    instance_ttl_ms: u64,
    scripts: Scripts,
}

/// This instance's handle on the Redis backplane. Dropping it ends the
/// link to Redis.
pub struct RedisBackplane {
    instance: Arc<Instance>,
    _link: AbortOnDropHandle<()>,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("up", &self.instance.is_up())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisBackplane {
    /// A backplane on the Redis server `source` names, for rooms that follow
    /// `limits`; starts the link task, which connects (and reconnects) in
    /// the background. Players on an instance that has not said it is alive
    /// for `instance_ttl` (it crashed) count as dropped.
    pub fn start(
        source: &RedisSource,
        limits: Limits,
        instance_ttl: Duration,
        timeouts: RedisTimeouts,
        stats: Arc<Stats>,
        clock: Clock,
    ) -> Result<Self, RedisError> {
        let instance = Arc::new(Instance {
            source: Source::new(source)?,
            commands: Mutex::default(),
            up: AtomicBool::new(false),
            down_reason: Mutex::new("redis: connecting".to_owned()),
            suspect: Notify::new(),
            timeouts,
            next_frame: AtomicU64::new(0),
            recent_frames: Mutex::default(),
            rooms: Mutex::default(),
            seats: Mutex::default(),
            queued: Mutex::default(),
            changed: Notify::new(),
            grace: Timers::new(clock),
            stats,
            clock,
            limits,
            room_ttl_ms: millis(ROOM_TTL).saturating_add(limits.grace_ms),
            node: uuid::Uuid::new_v4().simple().to_string(),
            instance_ttl_ms: millis(instance_ttl).max(3),
            scripts: Scripts::default(),
        });
        let link = tokio::spawn(link::run(instance.clone()));
        Ok(Self {
            instance,
            _link: AbortOnDropHandle::new(link),
        })
    }
}

impl Instance {
    /// The link is up: subscribed and resynchronised.
    fn link_up(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.stats.set_backplane_up(true);
    }

    /// The link is down for `reason`: frames stop going to Redis at once,
    /// `/readyz` says why, the outage is logged once, and the link task is
    /// told to drop the link and reconnect.
    fn link_lost(&self, reason: String) {
        let was_up = self.up.swap(false, Ordering::SeqCst);
        self.stats.set_backplane_up(false);
        for room in lock(&self.rooms).values() {
            room.log().first.lost();
        }
        if was_up {
            warn!(%reason, "lost the link to redis");
        }
        *lock(&self.down_reason) = reason;
        self.suspect.notify_waiters();
    }

    /// A Redis call failed: answered as unavailable. A timeout or a broken
    /// connection is also an outage signal.
    fn failed(&self, error: &RedisError) -> BackplaneError {
        debug!(%error, "redis call failed");
        if error.is_timeout() {
            let waited = self.timeouts.command.as_secs_f64();
            self.link_lost(format!("redis: no reply in {waited:.1} s"));
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        {
            self.link_lost(format!("redis: {error}"));
        }
        BackplaneError::Unavailable
    }

    /// A new id for a frame this instance publishes.
    fn frame_id(&self) -> String {
        frames::frame_id(&self.node, self.next_frame.fetch_add(1, Ordering::Relaxed))
    }

    /// `true` the first time frame `id` of this instance ([`Self::frame_id`])
    /// reaches its members, and for any other id.
    fn first_delivery(&self, id: &str) -> bool {
        frames::frame_number(&self.node, id)
            .is_none_or(|number| lock(&self.recent_frames).first(number))
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn subscription(&self, room: &RoomName) -> Option<Arc<Subscription>> {
        lock(&self.rooms).get(room).cloned()
    }

    /// Frees the seats of `room` whose grace period ran out by `now`; the
    /// next deadline, if any.
    async fn expire(&self, room: &RoomName, now: u64) -> Result<Option<u64>, BackplaneError> {
        if !self.is_up() {
            return Err(BackplaneError::Unavailable);
        }
        let (next, _, _) = self
            .update(room, 0, |roster: &mut Roster, commit| {
                Ok::<_, BackplaneError>(commit.change.expire(roster, now))
            })
            .await?;
        Ok(next)
    }
}

impl Transport for RedisBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<dyn RoomSink>) {
        let subscription = Arc::new(Subscription::new(room.clone(), sink));
        lock(&self.instance.rooms).insert(room.clone(), subscription);
        self.instance.changed.notify_one();
    }

    fn unsubscribe(&self, room: &RoomName) {
        lock(&self.instance.rooms).remove(room);
        self.instance.changed.notify_one();
    }

    fn ready(&self) -> Result<(), BackplaneError> {
        if self.instance.is_up() {
            Ok(())
        } else {
            Err(BackplaneError::Down(
                lock(&self.instance.down_reason).clone(),
            ))
        }
    }
}
