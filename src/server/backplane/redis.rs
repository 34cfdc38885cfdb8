//! The Redis backplane: instances share rooms through one Redis server.
//!
//! For room `r`, Redis holds:
//! - the hash `battle:room:r`: `roster` (the [`Roster`] as JSON), `v` (its
//!   version, for compare-and-set), `seq` (the room's sequence number), and
//!   per member `a:<id>` (last action) and `t:<id>` (last typing ping, ms
//!   since the epoch), which frames write without reading the roster, and
//!   per seated connection `n:<conn>` (the instance it is on). It expires
//!   when no instance has served the room for the room TTL, so nothing is
//!   left behind by instances that die.
//! - the channel `battle:room:r`: `<seq>|<server frame>` for each numbered
//!   frame, and `r|<conn>` when connection `conn` lost its seat to a newer
//!   one.
//! - per live instance, `battle:node:<id>`, refreshed while it runs: the
//!   other instances count the connections of an instance whose key expired
//!   (it crashed) as dropped. Every instance serving a room also frees the
//!   seats whose grace period ran out, in case the instance that started it
//!   is gone.
//!
//! Roster changes (join, disconnect, expiry) read the roster, apply the pure
//! [`Roster`] rules, and commit with a Lua script only if the version did
//! not move, numbering and publishing their presence frames in the same
//! atomic step. A typing ping or an action is one script call that numbers,
//! records and publishes it. Every frame comes back through the
//! subscription, to the publishing instance too: one delivery path.
//!
//! One pub/sub connection per instance (the link task) subscribes to the
//! rooms that have local connections; commands go through redis-rs's
//! reconnecting [`ConnectionManager`]. While the link is down, rooms keep
//! working for this instance's own members (frames numbered after the last
//! one seen, counted as unpublished, their effect remembered per member),
//! disconnections are queued, and joins and verdicts are refused. When the
//! link is back, the task resubscribes, replays the queue, seats this
//! instance's members again if Redis lost them, writes what was remembered,
//! publishes a fresh snapshot to each of its rooms (so members on other
//! instances learn what happened here meanwhile), and only then reports
//! ready.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig, PubSub, PubSubSink},
    AsyncCommands, Client, RedisError, Script,
};
use tokio::sync::{watch, Notify};
use tokio_util::task::AbortOnDropHandle;
use tracing::{info, warn};

use super::{numbered, presence, Backplane, BackplaneError, JoinError, Joined, VerdictError};
use crate::{
    protocol::{
        Action, ClientEvent, ClientFrame, MemberRef, PlayerKey, Presence, PresenceEvent, RoomName,
        ServerFrame, Snapshot,
    },
    server::{
        hub::{Clock, Delivery, LocalRoom},
        roster::{JoinRequest, Limits, Refusal, Roster, Seat},
        stats::Stats,
    },
    status::Backoff,
};

/// How long a room's state stays in Redis once no instance serves it (plus
/// the grace period, so that a reconnecting member's seat outlives it).
const ROOM_TTL: Duration = Duration::from_secs(60);
/// How long after a grace period ran out an instance other than the one
/// that started it frees the seat (if that one is gone).
const GRACE_SLACK: Duration = Duration::from_secs(1);
/// Prefix of every room's key and channel.
const PREFIX: &str = "battle:room:";
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may take before the broker counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a join waits for its room's subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between two attempts to reach Redis.
const LINK_BACKOFF_CAP: Duration = Duration::from_secs(2);
/// How many rooms one pipelined read of the crash sweep takes.
const SWEEP_BATCH: usize = 256;
/// How many times a roster change is retried when another instance changed
/// the roster first.
const MAX_ATTEMPTS: usize = 32;

/// Commits a roster change if its version did not move, then numbers and
/// publishes its messages. Returns the room's last `seq`, or -1 if another
/// instance changed the roster first.
const COMMIT: &str = r"
-- KEYS[1] room, also its channel; ARGV: version read, roster JSON (''
-- deletes the room), TTL ms, lowest seq to continue from, seq read ('' if
-- it may have moved), n fields to delete, the fields, m fields to set, the
-- field-value pairs, then messages ('r|...' as they are, others numbered).
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= ARGV[1] then return -1 end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if ARGV[5] ~= '' and tonumber(ARGV[5]) ~= seq then return -1 end
local floor = tonumber(ARGV[4])
if floor > seq then seq = floor end
local n = tonumber(ARGV[6])
for i = 7, 6 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
local at = 7 + n
local m = tonumber(ARGV[at])
for i = at + 1, at + 2 * m, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = at + 1 + 2 * m, #ARGV do
  local message = ARGV[i]
  if string.sub(message, 1, 2) == 'r|' then
    redis.call('PUBLISH', KEYS[1], message)
  else
    seq = seq + 1
    redis.call('PUBLISH', KEYS[1], seq .. '|' .. message)
  end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'roster', ARGV[2], 'v', (tonumber(v) or 0) + 1, 'seq', seq)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return seq
";

/// Numbers, records and publishes a frame of a room that exists. Returns
/// its `seq`, or -1 if the room does not exist.
const PUBLISH: &str = r"
-- KEYS[1] room, also its channel; ARGV: field, value, frame, TTL ms.
if redis.call('HEXISTS', KEYS[1], 'roster') == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', KEYS[1], seq .. '|' .. ARGV[3])
return seq
";

/// A message on a room's channel.
#[derive(Debug, Clone, PartialEq)]
enum Message {
    /// A frame for every member, numbered.
    Frame(u64, ServerFrame),
    /// This connection lost its seat to a newer one.
    Replaced(String),
}

impl Message {
    /// Reads a channel message; `None` if it is not one of ours.
    fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once('|')?;
        if head == "r" {
            return Some(Self::Replaced(body.to_owned()));
        }
        let seq = head.parse().ok()?;
        Some(Self::Frame(seq, ServerFrame::parse(body)?))
    }
}

/// The text published for connection `conn` losing its seat.
fn replaced_message(conn: &str) -> String {
    format!("r|{conn}")
}

/// The hash field where a member's `event` is recorded, and its value.
fn record_field(id: &str, event: ClientEvent, now: u64) -> (String, String) {
    match event {
        ClientEvent::Typing => (format!("t:{id}"), now.to_string()),
        ClientEvent::Action(action) => (format!("a:{id}"), action.code().into_owned()),
    }
}

/// Builds a roster from a room's hash: the roster, then what members did
/// since it was written.
fn roster_from(fields: &HashMap<String, String>) -> Roster {
    let mut roster: Roster = fields
        .get("roster")
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    for (field, value) in fields {
        if let Some(id) = field.strip_prefix("a:") {
            if let Ok(action) = Action::parse(value) {
                roster.record(id, ClientEvent::Action(action), 0);
            }
        } else if let Some(id) = field.strip_prefix("t:") {
            if let Ok(at) = value.parse() {
                roster.record(id, ClientEvent::Typing, at);
            }
        }
    }
    roster
}

/// What a roster change tells the room.
#[derive(Debug, Default)]
struct Told {
    /// Connections that lost their seat.
    replaced: Vec<String>,
    /// Presence frames, in order.
    presence: Vec<(PresenceEvent, MemberRef)>,
    /// Hash fields that no longer hold anything true.
    forget: Vec<String>,
    /// Connections that took a seat, with the instance they are on.
    owners: Vec<(String, String)>,
    /// Send every member the room as it is after the change, at this time:
    /// the change commits only if no frame came in between.
    snapshot_at: Option<u64>,
}

impl Told {
    fn presence(&mut self, event: PresenceEvent, member: MemberRef) {
        match event {
            PresenceEvent::Leave => {
                self.forget.push(format!("a:{}", member.id));
                self.forget.push(format!("t:{}", member.id));
            }
            PresenceEvent::Reconnecting => self.forget.push(format!("t:{}", member.id)),
            PresenceEvent::Join | PresenceEvent::Resume => {}
        }
        self.presence.push((event, member));
    }

    /// Connection `conn` of instance `node` took a seat.
    fn seated(&mut self, conn: &str, node: &str) {
        self.owners.push((owner_field(conn), node.to_owned()));
    }

    /// Connection `conn` gave up its seat, or lost it.
    fn unseated(&mut self, conn: &str) {
        self.forget.push(owner_field(conn));
    }

    fn is_empty(&self) -> bool {
        self.replaced.is_empty()
            && self.presence.is_empty()
            && self.forget.is_empty()
            && self.owners.is_empty()
            && self.snapshot_at.is_none()
    }
}

/// Seats `request`, a connection of instance `node`, and tells the room.
fn take_seat(
    roster: &mut Roster,
    told: &mut Told,
    request: JoinRequest,
    limits: &Limits,
    node: &str,
) -> Result<Seat, Refusal> {
    let conn = request.conn.clone();
    let seat = roster.join(request, limits)?;
    if let Some(old) = &seat.replaced {
        told.unseated(old);
        told.replaced.push(old.clone());
    }
    told.seated(&conn, node);
    if let Some(event) = seat.event {
        told.presence(event, seat.member.clone());
    }
    Ok(seat)
}

/// Connection `conn` ended, cleanly or not; tells the room. Returns the
/// deadline of the grace period it started, if any.
fn give_up_seat(
    roster: &mut Roster,
    told: &mut Told,
    conn: &str,
    clean: bool,
    limits: &Limits,
    now: u64,
) -> Option<u64> {
    told.unseated(conn);
    let (event, member) = roster.disconnect(conn, clean, limits, now)?;
    told.presence(event, member);
    if event == PresenceEvent::Reconnecting {
        roster.poll_timeout()
    } else {
        None
    }
}

/// The hash field naming the instance that connection `conn` is on.
fn owner_field(conn: &str) -> String {
    format!("n:{conn}")
}

/// The key that says instance `node` is alive.
fn node_key(node: &str) -> String {
    format!("battle:node:{node}")
}

/// A room as read from Redis.
struct Loaded {
    roster: Roster,
    version: String,
    seq: u64,
    /// The instance each seated connection is on, by connection id.
    owners: HashMap<String, String>,
}

impl From<&HashMap<String, String>> for Loaded {
    /// Reads a room's hash.
    fn from(fields: &HashMap<String, String>) -> Self {
        let owners = fields
            .iter()
            .filter_map(|(field, node)| Some((field.strip_prefix("n:")?.to_owned(), node.clone())))
            .collect();
        Self {
            roster: roster_from(fields),
            version: fields.get("v").cloned().unwrap_or_default(),
            seq: fields.get("seq").and_then(|s| s.parse().ok()).unwrap_or(0),
            owners,
        }
    }
}

/// A seat held by a connection of this instance.
#[derive(Debug, Clone)]
struct LocalSeat {
    room: RoomName,
    request: JoinRequest,
    member: MemberRef,
    limits: Limits,
}

/// A disconnection that happened while the link was down.
#[derive(Debug, Clone)]
struct Pending {
    room: RoomName,
    conn: String,
    clean: bool,
    limits: Limits,
    now: u64,
}

/// What a member did while the link was down.
#[derive(Debug, Clone, Copy, Default)]
struct Unpublished {
    action: Option<Action>,
    typing: Option<u64>,
}

/// A room with connections on this instance.
#[derive(Debug)]
struct NodeRoom {
    sink: Arc<LocalRoom>,
    /// True once the room's channel is subscribed.
    subscribed: watch::Sender<bool>,
    // Held while handing a frame to the room, so frames go out in `seq`
    // order; nothing awaited while held.
    log: Mutex<RoomLog>,
}

#[derive(Debug, Default)]
struct RoomLog {
    /// The highest `seq` handed to the room.
    seq: u64,
    /// What members did while the link was down, by member id.
    unpublished: HashMap<String, Unpublished>,
}

impl NodeRoom {
    fn log(&self) -> MutexGuard<'_, RoomLog> {
        lock(&self.log)
    }

    /// Hands the room a frame numbered `seq`.
    fn deliver(&self, seq: u64, frame: ServerFrame) {
        let mut log = self.log();
        log.seq = log.seq.max(seq);
        self.sink.deliver(&numbered(frame, seq));
    }
}

struct Shared {
    client: Client,
    commands: OnceLock<ConnectionManager>,
    /// Subscribed, resynchronised, and ready to publish.
    up: AtomicBool,
    rooms: Mutex<HashMap<RoomName, Arc<NodeRoom>>>,
    /// Seats of this instance's connections, by connection id.
    seats: Mutex<HashMap<String, LocalSeat>>,
    pending: Mutex<Vec<Pending>>,
    /// The set of rooms changed: the link task subscribes or unsubscribes.
    changed: Notify,
    stats: Arc<Stats>,
    clock: Clock,
    room_ttl_ms: u64,
    grace_ms: u64,
    /// This instance's id, as recorded beside each of its seats.
    node: String,
    /// How long this instance counts as alive after its last heartbeat.
    instance_ttl_ms: u64,
    commit: Script,
    publish: Script,
}

/// This instance's handle on the Redis backplane.
pub struct RedisBackplane {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("up", &self.shared.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(error: &RedisError) -> BackplaneError {
    warn!(%error, "redis command failed");
    BackplaneError::Unavailable
}

impl RedisBackplane {
    /// A backplane on the Redis server at `url`, for rooms whose grace
    /// period is `grace`; starts the link task, which connects (and
    /// reconnects) in the background. Players on an instance that has not
    /// said it is alive for `instance_ttl` (it crashed) count as dropped.
    pub fn start(
        url: &str,
        stats: Arc<Stats>,
        clock: Clock,
        grace: Duration,
        instance_ttl: Duration,
    ) -> Result<Self, RedisError> {
        let room_ttl = ROOM_TTL + grace;
        let shared = Arc::new(Shared {
            client: Client::open(url)?,
            commands: OnceLock::new(),
            up: AtomicBool::new(false),
            rooms: Mutex::default(),
            seats: Mutex::default(),
            pending: Mutex::default(),
            changed: Notify::new(),
            stats,
            clock,
            room_ttl_ms: u64::try_from(room_ttl.as_millis()).unwrap_or(u64::MAX),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            node: uuid::Uuid::new_v4().simple().to_string(),
            instance_ttl_ms: u64::try_from(instance_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(3),
            commit: Script::new(COMMIT),
            publish: Script::new(PUBLISH),
        });
        tokio::spawn(link(shared.clone()));
        Ok(Self { shared })
    }
}

/// Keeps the pub/sub connection up for as long as the process runs.
async fn link(shared: Arc<Shared>) {
    let mut backoff = Backoff::with_cap(LINK_BACKOFF_CAP.as_millis() as u64);
    let mut linked_before = false;
    loop {
        match shared.connect().await {
            Ok(pubsub) => {
                backoff.reset();
                let outcome = shared.serve(pubsub, &mut linked_before).await;
                shared.set_up(false);
                warn!(?outcome, "lost the link to redis");
            }
            Err(error) => warn!(%error, "cannot reach redis"),
        }
        let random = (uuid::Uuid::new_v4().as_u64_pair().0 >> 11) as f64 / (1u64 << 53) as f64;
        tokio::time::sleep(Duration::from_millis(backoff.next_delay(random))).await;
    }
}

impl Shared {
    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        self.stats.set_backplane_up(up);
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    async fn connect(&self) -> Result<PubSub, RedisError> {
        let timeout = |_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(timeout)??;
        if self.commands.get().is_none() {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(1);
            let manager = tokio::time::timeout(
                CONNECT_TIMEOUT,
                ConnectionManager::new_with_config(self.client.clone(), config),
            )
            .await
            .map_err(timeout)??;
            let _ = self.commands.set(manager);
        }
        Ok(pubsub)
    }

    /// Subscribes, resynchronises, then relays messages until the link
    /// fails.
    async fn serve(
        self: &Arc<Self>,
        pubsub: PubSub,
        linked_before: &mut bool,
    ) -> Result<(), BackplaneError> {
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed = HashSet::new();
        self.beat().await?;
        self.reconcile(&mut sink, &mut subscribed).await?;
        self.resync().await?;
        self.set_up(true);
        if std::mem::replace(linked_before, true) {
            self.stats.backplane_reconnected();
        }
        info!("linked to redis");
        // Beside the loop, so that a long sweep never holds frames back.
        let _maintenance = AbortOnDropHandle::new(tokio::spawn(self.clone().maintain()));
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => self.dispatch(&message),
                    None => return Ok(()),
                },
                () = self.changed.notified() => self.reconcile(&mut sink, &mut subscribed).await?,
            }
        }
    }

    /// While the link is up: keeps the rooms served here from expiring,
    /// says this instance is alive, and looks for crashed instances. A
    /// failure is logged; the link itself notices when Redis is gone.
    async fn maintain(self: Arc<Self>) {
        let mut refresh = tokio::time::interval(Duration::from_millis(self.room_ttl_ms / 3));
        let mut heartbeat = tokio::time::interval(Duration::from_millis(self.instance_ttl_ms / 3));
        heartbeat.tick().await;
        loop {
            // A failure was logged where it happened; the next round retries.
            let _ = tokio::select! {
                _ = refresh.tick() => self.refresh().await,
                _ = heartbeat.tick() => match self.beat().await {
                    Ok(()) => self.sweep().await,
                    Err(error) => Err(error),
                },
            };
        }
    }

    /// Subscribes to the rooms that have local connections and unsubscribes
    /// from the others.
    async fn reconcile(
        &self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<RoomName>,
    ) -> Result<(), BackplaneError> {
        let wanted: HashSet<RoomName> = lock(&self.rooms).keys().cloned().collect();
        let channels =
            |rooms: Vec<&RoomName>| -> Vec<String> { rooms.into_iter().map(key).collect() };
        let add = channels(wanted.difference(subscribed).collect());
        if !add.is_empty() {
            sink.subscribe(add).await.map_err(|e| unavailable(&e))?;
        }
        let remove = channels(subscribed.difference(&wanted).collect());
        if !remove.is_empty() {
            sink.unsubscribe(remove)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        *subscribed = wanted;
        for (name, room) in lock(&self.rooms).iter() {
            if subscribed.contains(name) {
                room.subscribed.send_replace(true);
            }
        }
        Ok(())
    }

    /// Says this instance is alive.
    async fn beat(&self) -> Result<(), BackplaneError> {
        redis::cmd("SET")
            .arg(node_key(&self.node))
            .arg(1)
            .arg("PX")
            .arg(self.instance_ttl_ms)
            .query_async::<()>(&mut self.commands()?)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Counts as dropped the connections, in the rooms served here, of
    /// instances that stopped saying they are alive: they crashed, and
    /// could not tell their rooms. Their seats then go through the grace
    /// period like any dropped connection's.
    async fn sweep(&self) -> Result<(), BackplaneError> {
        let rooms: Vec<RoomName> = lock(&self.rooms).keys().cloned().collect();
        let mut alive: HashMap<String, bool> = HashMap::new();
        let limits = Limits {
            max_spectators: 0,
            grace_ms: self.grace_ms,
        };
        let mut loaded = Vec::with_capacity(rooms.len());
        for batch in rooms.chunks(SWEEP_BATCH) {
            let mut pipe = redis::pipe();
            for room in batch {
                pipe.hgetall(key(room));
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.commands()?)
                .await
                .map_err(|e| unavailable(&e))?;
            loaded.extend(batch.iter().zip(hashes));
        }
        for (room, fields) in loaded {
            let Loaded { roster, owners, .. } = Loaded::from(&fields);
            let mut dead = Vec::new();
            for conn in roster.connected() {
                let Some(node) = owners.get(conn).filter(|node| **node != self.node) else {
                    continue;
                };
                if !alive.contains_key(node) {
                    let exists: bool = self
                        .commands()?
                        .exists(node_key(node))
                        .await
                        .map_err(|e| unavailable(&e))?;
                    alive.insert(node.clone(), exists);
                }
                if !alive[node] {
                    dead.push(conn.to_owned());
                }
            }
            if dead.is_empty() {
                continue;
            }
            warn!(%room, connections = dead.len(), "seats of an instance that stopped answering");
            let now = self.clock.now();
            self.update(room, 0, |roster, told| {
                for conn in &dead {
                    give_up_seat(roster, told, conn, false, &limits, now);
                }
                Ok::<_, BackplaneError>(())
            })
            .await?;
        }
        Ok(())
    }

    /// Keeps the state of the rooms served here from expiring.
    async fn refresh(&self) -> Result<(), BackplaneError> {
        let rooms: Vec<RoomName> = lock(&self.rooms).keys().cloned().collect();
        if rooms.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.pexpire(
                key(room),
                i64::try_from(self.room_ttl_ms).unwrap_or(i64::MAX),
            )
            .ignore();
        }
        pipe.query_async::<()>(&mut self.commands()?)
            .await
            .map_err(|e| unavailable(&e))
    }

    fn dispatch(self: &Arc<Self>, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Some(room) = channel
            .strip_prefix(PREFIX)
            .and_then(|name| RoomName::parse(name).ok())
        else {
            return;
        };
        let Some(local) = lock(&self.rooms).get(&room).cloned() else {
            return;
        };
        let text = std::str::from_utf8(message.get_payload_bytes()).unwrap_or_default();
        match Message::parse(text) {
            Some(Message::Frame(seq, frame)) => {
                if let ServerFrame::Presence(Presence {
                    event: PresenceEvent::Reconnecting,
                    ..
                }) = &frame
                {
                    tokio::spawn(self.clone().watch_grace(room));
                }
                local.deliver(seq, frame);
            }
            Some(Message::Replaced(conn)) => {
                lock(&self.seats).remove(&conn);
                local.sink.deliver(&Delivery::Replaced { conn });
            }
            None => warn!(%room, "unreadable message on the room's channel"),
        }
    }

    /// Frees the seats of `room` whose grace period ran out, after the
    /// instance that started it would have (it may be gone: shut down for a
    /// deploy, say), for as long as members here can be told.
    async fn watch_grace(self: Arc<Self>, room: RoomName) {
        let slack = u64::try_from(GRACE_SLACK.as_millis()).unwrap_or(u64::MAX);
        let mut deadline = self
            .clock
            .now()
            .saturating_add(self.grace_ms)
            .saturating_add(slack);
        loop {
            tokio::time::sleep_until(self.clock.instant(deadline)).await;
            if !lock(&self.rooms).contains_key(&room) {
                return;
            }
            let now = self.clock.now();
            deadline = match self.expire(&room, now).await {
                Ok(Some(next)) => next.saturating_add(slack),
                Ok(None) => return,
                Err(_) => now.saturating_add(slack),
            };
        }
    }

    /// Frees the seats of `room` whose grace period ran out by `now`; the
    /// next deadline, if any.
    async fn expire(&self, room: &RoomName, now: u64) -> Result<Option<u64>, BackplaneError> {
        if !self.is_up() {
            return Err(BackplaneError::Unavailable);
        }
        let (next, _, _) = self
            .update(room, 0, |roster, told| {
                for member in roster.expire(now) {
                    told.presence(PresenceEvent::Leave, member);
                }
                Ok::<_, BackplaneError>(roster.poll_timeout())
            })
            .await?;
        Ok(next)
    }

    fn commands(&self) -> Result<ConnectionManager, BackplaneError> {
        self.commands
            .get()
            .cloned()
            .ok_or(BackplaneError::Unavailable)
    }

    async fn load(&self, room: &RoomName) -> Result<Loaded, BackplaneError> {
        let fields: HashMap<String, String> = self
            .commands()?
            .hgetall(key(room))
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Loaded::from(&fields))
    }

    /// Applies `change` to the room's roster and commits it, again if
    /// another instance changed the roster in between. Returns what
    /// `change` returned, the room's `seq` after it, and the new roster.
    /// Frames numbered up to `floor` were already handed out here: the
    /// room's sequence continues after them.
    async fn update<T, E: From<BackplaneError>>(
        &self,
        room: &RoomName,
        floor: u64,
        mut change: impl FnMut(&mut Roster, &mut Told) -> Result<T, E>,
    ) -> Result<(T, u64, Roster), E> {
        for _ in 0..MAX_ATTEMPTS {
            let Loaded {
                mut roster,
                version,
                seq,
                ..
            } = self.load(room).await?;
            let before = roster.clone();
            let mut told = Told::default();
            let value = change(&mut roster, &mut told)?;
            if told.is_empty() && roster == before && floor <= seq {
                return Ok((value, seq, roster));
            }
            let json = if roster.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&roster).expect("rosters always serialise")
            };
            let mut invocation = self.commit.key(key(room));
            invocation
                .arg(&version)
                .arg(json)
                .arg(self.room_ttl_ms)
                .arg(floor)
                .arg(
                    told.snapshot_at
                        .map(|_| seq.to_string())
                        .unwrap_or_default(),
                )
                .arg(told.forget.len())
                .arg(&told.forget)
                .arg(told.owners.len());
            for (field, node) in &told.owners {
                invocation.arg(field).arg(node);
            }
            for conn in &told.replaced {
                invocation.arg(replaced_message(conn));
            }
            for (event, member) in told.presence {
                invocation.arg(presence(event, member).to_json());
            }
            if let Some(now) = told.snapshot_at {
                let members = roster.snapshot(now);
                invocation.arg(ServerFrame::Snapshot(Snapshot { seq: 0, members }).to_json());
            }
            let seq: i64 = invocation
                .invoke_async(&mut self.commands()?)
                .await
                .map_err(|e| E::from(unavailable(&e)))?;
            if let Ok(seq) = u64::try_from(seq) {
                return Ok((value, seq, roster));
            }
        }
        warn!(%room, "roster kept changing under this instance");
        Err(BackplaneError::Unavailable.into())
    }

    /// Numbers, records and publishes a frame of member `id`; `false` if the
    /// room does not exist.
    async fn publish(
        &self,
        room: &RoomName,
        id: &str,
        event: ClientEvent,
        frame: &ServerFrame,
        now: u64,
    ) -> Result<bool, BackplaneError> {
        let (field, value) = record_field(id, event, now);
        let seq: i64 = self
            .publish
            .key(key(room))
            .arg(field)
            .arg(value)
            .arg(frame.to_json())
            .arg(self.room_ttl_ms)
            .invoke_async(&mut self.commands()?)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(seq >= 0)
    }

    /// Hands `frame` to this instance's members of `room` only, numbered
    /// after the last frame they got: the link is down.
    fn deliver_locally(
        &self,
        room: &RoomName,
        frame: ServerFrame,
        record: Option<(&str, ClientEvent, u64)>,
    ) {
        let Some(local) = lock(&self.rooms).get(room).cloned() else {
            return;
        };
        let mut log = local.log();
        log.seq += 1;
        if let Some((id, event, now)) = record {
            let entry = log.unpublished.entry(id.to_owned()).or_default();
            match event {
                ClientEvent::Typing => entry.typing = Some(now),
                ClientEvent::Action(action) => entry.action = Some(action),
            }
        }
        local.sink.deliver(&numbered(frame, log.seq));
    }

    /// After the link came back: replays the disconnections it missed, then
    /// brings each local room up to date and sends the room (on every
    /// instance) a snapshot.
    async fn resync(&self) -> Result<(), BackplaneError> {
        let now = self.clock.now();
        loop {
            let Some(next) = lock(&self.pending).first().cloned() else {
                break;
            };
            self.update(&next.room, 0, |roster, told| {
                give_up_seat(roster, told, &next.conn, next.clean, &next.limits, next.now);
                for member in roster.expire(now) {
                    told.presence(PresenceEvent::Leave, member);
                }
                Ok::<_, BackplaneError>(())
            })
            .await?;
            lock(&self.pending).remove(0);
        }
        let rooms: Vec<(RoomName, Arc<NodeRoom>)> = lock(&self.rooms)
            .iter()
            .map(|(name, room)| (name.clone(), room.clone()))
            .collect();
        for (name, local) in rooms {
            self.resync_room(&name, &local, now).await?;
        }
        Ok(())
    }

    async fn resync_room(
        &self,
        name: &RoomName,
        local: &NodeRoom,
        now: u64,
    ) -> Result<(), BackplaneError> {
        let (floor, unpublished) = {
            let log = local.log();
            (log.seq, log.unpublished.clone())
        };
        let seats: Vec<LocalSeat> = lock(&self.seats)
            .values()
            .filter(|seat| seat.room == *name)
            .cloned()
            .collect();
        let mut refused = Vec::new();
        self.update(name, floor, |roster, told| {
            refused.clear();
            told.snapshot_at = Some(now);
            for member in roster.expire(now) {
                told.presence(PresenceEvent::Leave, member);
            }
            for seat in &seats {
                if roster.holds(&seat.request.conn) {
                    continue;
                }
                let request = JoinRequest {
                    new_id: seat.member.id.clone(),
                    ..seat.request.clone()
                };
                if take_seat(roster, told, request, &seat.limits, &self.node).is_err() {
                    refused.push(seat.request.conn.clone());
                }
            }
            for (id, did) in &unpublished {
                if let Some(action) = did.action {
                    roster.record(id, ClientEvent::Action(action), now);
                    told.forget.push(format!("a:{id}"));
                }
                if let Some(at) = did.typing {
                    roster.record(id, ClientEvent::Typing, at);
                    told.forget.push(format!("t:{id}"));
                }
            }
            Ok::<_, BackplaneError>(())
        })
        .await?;
        local.log().unpublished.clear();
        for conn in refused {
            lock(&self.seats).remove(&conn);
            local.sink.deliver(&Delivery::Replaced { conn });
        }
        Ok(())
    }
}

/// The key and channel of `room`.
fn key(room: &RoomName) -> String {
    format!("{PREFIX}{}", room.as_str())
}

impl Backplane for RedisBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>) {
        let local = Arc::new(NodeRoom {
            sink,
            subscribed: watch::Sender::new(false),
            log: Mutex::default(),
        });
        lock(&self.shared.rooms).insert(room.clone(), local);
        self.shared.changed.notify_one();
    }

    fn unsubscribe(&self, room: &RoomName) {
        lock(&self.shared.rooms).remove(room);
        self.shared.changed.notify_one();
    }

    fn ready(&self) -> Result<(), BackplaneError> {
        if self.shared.is_up() {
            Ok(())
        } else {
            Err(BackplaneError::Unavailable)
        }
    }

    async fn join(
        &self,
        room: &RoomName,
        request: JoinRequest,
        limits: Limits,
        now: u64,
    ) -> Result<Joined, JoinError> {
        let shared = &self.shared;
        let local = lock(&shared.rooms).get(room).cloned();
        let (Some(local), true) = (local, shared.is_up()) else {
            return Err(BackplaneError::Unavailable.into());
        };
        let mut subscribed = local.subscribed.subscribe();
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribed.wait_for(|yes| *yes))
            .await
            .map_err(|_| BackplaneError::Unavailable)?
            .map_err(|_| BackplaneError::Unavailable)?;
        let (seat, seq, roster) = shared
            .update(room, 0, |roster, told| {
                for member in roster.expire(now) {
                    told.presence(PresenceEvent::Leave, member);
                }
                Ok::<_, JoinError>(take_seat(
                    roster,
                    told,
                    request.clone(),
                    &limits,
                    &shared.node,
                )?)
            })
            .await?;
        lock(&shared.seats).insert(
            request.conn.clone(),
            LocalSeat {
                room: room.clone(),
                request,
                member: seat.member.clone(),
                limits,
            },
        );
        Ok(Joined {
            seat,
            seq,
            members: roster.snapshot(now),
        })
    }

    async fn disconnect(
        &self,
        room: &RoomName,
        conn: &str,
        clean: bool,
        limits: Limits,
        now: u64,
    ) -> Result<Option<u64>, BackplaneError> {
        let shared = &self.shared;
        let seat = lock(&shared.seats).remove(conn);
        if shared.is_up() {
            let change = shared
                .update(room, 0, |roster, told| {
                    Ok::<_, BackplaneError>(give_up_seat(roster, told, conn, clean, &limits, now))
                })
                .await;
            if let Ok((deadline, _, _)) = change {
                return Ok(deadline);
            }
        }
        let Some(seat) = seat else {
            return Ok(None);
        };
        lock(&shared.pending).push(Pending {
            room: room.clone(),
            conn: conn.to_owned(),
            clean,
            limits,
            now,
        });
        let dropped = !clean && limits.grace_ms > 0;
        let event = if dropped {
            PresenceEvent::Reconnecting
        } else {
            PresenceEvent::Leave
        };
        shared.deliver_locally(room, presence(event, seat.member), None);
        Ok(dropped.then(|| now.saturating_add(limits.grace_ms)))
    }

    async fn expire(&self, room: &RoomName, now: u64) -> Result<Option<u64>, BackplaneError> {
        self.shared.expire(room, now).await
    }

    async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
        now: u64,
    ) -> Result<(), BackplaneError> {
        let shared = &self.shared;
        let event = frame.event;
        let frame = ServerFrame::relayed(frame, from.to_owned(), 0);
        if shared.is_up() {
            shared.publish(room, from, event, &frame, now).await?;
        } else {
            shared.stats.unpublished();
            shared.deliver_locally(room, frame, Some((from, event, now)));
        }
        Ok(())
    }

    async fn publish_verdict(
        &self,
        room: &RoomName,
        player: &PlayerKey,
        action: Action,
        now: u64,
    ) -> Result<(), VerdictError> {
        let shared = &self.shared;
        if !shared.is_up() {
            return Err(BackplaneError::Unavailable.into());
        }
        let member = shared
            .load(room)
            .await?
            .roster
            .player_of(player)
            .ok_or(VerdictError::NoSuchPlayer)?;
        let event = ClientEvent::Action(action);
        let frame = ServerFrame::verdict(action, member.id.clone(), 0);
        if shared.publish(room, &member.id, event, &frame, now).await? {
            Ok(())
        } else {
            Err(VerdictError::NoSuchPlayer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Role;

    #[test]
    fn channel_messages_read_back_as_published() {
        let frame = presence(
            PresenceEvent::Join,
            MemberRef {
                id: "m1".into(),
                role: Role::Player,
            },
        );
        let text = format!("12|{}", frame.to_json());
        assert_eq!(Message::parse(&text), Some(Message::Frame(12, frame)));
        assert_eq!(
            Message::parse(&replaced_message("c1")),
            Some(Message::Replaced("c1".into()))
        );
        for junk in [
            "",
            "12",
            "x|{}",
            "12|not json",
            "-1|{\"type\":\"heartbeat\"}",
        ] {
            assert_eq!(Message::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_roster_read_back_carries_what_members_did_since_it_was_written() {
        let mut roster = Roster::default();
        let limits = Limits {
            max_spectators: 1,
            grace_ms: 1_000,
        };
        let request = JoinRequest {
            conn: "c1".into(),
            role: Role::Player,
            key: None,
            new_id: "m1".into(),
        };
        roster.join(request, &limits).unwrap();
        let mut fields = HashMap::from([
            ("roster".to_owned(), serde_json::to_string(&roster).unwrap()),
            ("a:m1".to_owned(), "FAILED_TC3".to_owned()),
            ("t:m1".to_owned(), "10000".to_owned()),
            ("a:gone".to_owned(), "AC".to_owned()),
        ]);
        fields.insert("n:c1".into(), "node-a".into());
        let loaded = Loaded::from(&fields);
        assert_eq!(loaded.owners["c1"], "node-a");
        let read = loaded.roster;
        let member = &read.snapshot(11_000)[0];
        assert_eq!(member.last_action, Some(Action::FailedTest(3)));
        assert_eq!(member.typing_ms, 1_500);
        assert_eq!(
            read.snapshot(11_000).len(),
            1,
            "no member from a stray field"
        );
        fields.insert("roster".into(), "{broken".into());
        assert!(roster_from(&fields).is_empty());
    }

    #[test]
    fn a_seat_records_its_instance_until_its_connection_ends_or_is_replaced() {
        let limits = Limits {
            max_spectators: 1,
            grace_ms: 1_000,
        };
        let request = |conn: &str| JoinRequest {
            conn: conn.into(),
            role: Role::Player,
            key: PlayerKey::parse("tab-key-000000000001"),
            new_id: format!("id-{conn}"),
        };
        let mut roster = Roster::default();
        let mut told = Told::default();
        take_seat(&mut roster, &mut told, request("c1"), &limits, "node-a").unwrap();
        assert_eq!(told.owners, [("n:c1".to_owned(), "node-a".to_owned())]);

        let mut told = Told::default();
        take_seat(&mut roster, &mut told, request("c2"), &limits, "node-b").unwrap();
        assert_eq!(told.replaced, ["c1"], "the same key took the seat over");
        assert_eq!(told.forget, ["n:c1"]);
        assert_eq!(told.owners, [("n:c2".to_owned(), "node-b".to_owned())]);

        let mut told = Told::default();
        let deadline = give_up_seat(&mut roster, &mut told, "c2", false, &limits, 5_000);
        assert_eq!(deadline, Some(6_000));
        assert_eq!(told.forget[0], "n:c2");
        assert_eq!(told.presence[0].0, PresenceEvent::Reconnecting);
        assert_eq!(roster.connected().count(), 0);
    }

    #[test]
    fn a_leave_forgets_what_the_member_did_and_a_drop_forgets_their_typing() {
        let member = |id: &str| MemberRef {
            id: id.into(),
            role: Role::Player,
        };
        let mut told = Told::default();
        told.presence(PresenceEvent::Join, member("a"));
        told.presence(PresenceEvent::Reconnecting, member("b"));
        told.presence(PresenceEvent::Leave, member("c"));
        assert_eq!(told.forget, ["t:b", "a:c", "t:c"]);
    }
}
