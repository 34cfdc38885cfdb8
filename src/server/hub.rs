//! Rooms on one node: each connection's bounded queue, fan-out to the
//! queues, and the seat each connection holds through the backplane.
//!
//! A connection [`join`](Hub::join)s a room and gets a [`Membership`]: its
//! queue of outgoing frames, and a guard that, when dropped, whatever way
//! the connection ends, detaches the queue and gives up the seat (at once
//! if the connection left cleanly, after the grace period otherwise). The
//! hub subscribes its [`LocalRoom`] to the backplane with the first local
//! connection and unsubscribes with the last.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::extract::ws::Utf8Bytes;
use tokio::{sync::Notify, time::Instant};
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::{
    backplane::{AnyBackplane, Backplane, BackplaneError, JoinError, Joined, VerdictError},
    roster::{JoinRequest, Limits},
    stats::{DropReason, Stats},
};
use crate::protocol::{Action, ClientFrame, PlayerKey, RoomName};

/// How soon a grace period that could not be enforced is tried again.
const EXPIRE_RETRY: Duration = Duration::from_secs(1);

/// The hub's clock: milliseconds since the Unix epoch, read once from the
/// system clock and then advanced with tokio's monotonic time, so that
/// instances on different machines agree (as far as their clocks do) on
/// deadlines kept in a shared backplane, and tests can pause and advance it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            start: Instant::now(),
            start_ms: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_ms.saturating_add(elapsed)
    }

    /// The instant at `ms` milliseconds since the Unix epoch (the clock's
    /// start, for earlier times).
    pub fn instant(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.start_ms))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A serialised frame on its way to members.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame's JSON text, shared by every member's queue.
    pub text: Utf8Bytes,
    /// For a typing ping (volatile: only the latest of a sender matters),
    /// its sender; `None` for frames that must all arrive.
    pub typing_from: Option<Arc<str>>,
    /// The frame's number in the room's sequence.
    pub seq: u64,
    /// When it was published, for the fan-out latency.
    pub published_at: Instant,
}

impl Outbound {
    /// Wraps a serialised frame that must arrive.
    pub fn lasting(text: String, seq: u64) -> Self {
        Self {
            text: text.into(),
            typing_from: None,
            seq,
            published_at: Instant::now(),
        }
    }

    /// Wraps a serialised typing ping from `from`.
    pub fn typing(text: String, seq: u64, from: Arc<str>) -> Self {
        Self {
            text: text.into(),
            typing_from: Some(from),
            seq,
            published_at: Instant::now(),
        }
    }
}

/// What the backplane hands to a node's room.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A frame for every member.
    Frame(Outbound),
    /// Connection `conn` lost its seat to a newer connection with the same
    /// key: it must close.
    Replaced {
        /// The connection that must close.
        conn: String,
    },
}

/// What a connection's mailbox hands to its task.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A frame to send.
    Frame(Outbound),
    /// A newer connection took this one's seat: close.
    Replaced,
}

/// How a frame fitted in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Queued.
    Queued,
    /// Full: it replaced its sender's older queued typing ping.
    Coalesced,
    /// Full: a queued typing ping, or this one, was dropped.
    TypingDropped,
    /// Full of frames that must arrive: the reader is too slow.
    Overflow,
}

/// A connection's bounded queue of outgoing frames. When it is full,
/// typing pings give way first: a newer ping replaces its sender's queued
/// one, and an action pushes out a queued ping. Only a mailbox full of
/// frames that must all arrive overflows, which closes the connection.
#[derive(Debug)]
pub struct Mailbox {
    // A leaf lock: nothing else is locked, and nothing awaited, while held.
    state: Mutex<MailboxState>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct MailboxState {
    queue: VecDeque<Outgoing>,
    /// No more frames: the reader overflowed or lost its seat.
    closed: bool,
}

fn is_typing_from(queued: &Outgoing, from: Option<&Arc<str>>) -> bool {
    match queued {
        Outgoing::Frame(frame) => match (&frame.typing_from, from) {
            (Some(sender), Some(from)) => sender == from,
            (Some(_), None) => true,
            (None, _) => false,
        },
        Outgoing::Replaced => false,
    }
}

impl Mailbox {
    fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn push(&self, frame: &Outbound) -> Fit {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Fit::Overflow;
        }
        let queue = &mut state.queue;
        let fit = if queue.len() < self.capacity {
            queue.push_back(Outgoing::Frame(frame.clone()));
            Fit::Queued
        } else if let Some(from) = &frame.typing_from {
            // Only the sender's latest ping matters.
            match queue.iter().rposition(|q| is_typing_from(q, Some(from))) {
                Some(at) => {
                    queue[at] = Outgoing::Frame(frame.clone());
                    Fit::Coalesced
                }
                None => Fit::TypingDropped,
            }
        } else if let Some(at) = queue.iter().position(|q| is_typing_from(q, None)) {
            queue.remove(at);
            queue.push_back(Outgoing::Frame(frame.clone()));
            Fit::TypingDropped
        } else {
            state.closed = true;
            Fit::Overflow
        };
        drop(state);
        self.ready.notify_one();
        fit
    }

    /// Tells the reader its seat was taken, and takes no more frames.
    fn replace(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.queue.push_back(Outgoing::Replaced);
        state.closed = true;
        drop(state);
        self.ready.notify_one();
    }

    /// The next frame; `None` once the mailbox overflowed and is drained.
    pub async fn recv(&self) -> Option<Outgoing> {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(next) = state.queue.pop_front() {
                    return Some(next);
                }
                if state.closed {
                    return None;
                }
            }
            // One reader: a notification sent since the check above is kept
            // as a permit, so none is lost.
            self.ready.notified().await;
        }
    }
}

/// The connections of one room on this node.
#[derive(Debug)]
pub struct LocalRoom {
    // Nothing awaited while held; the mailboxes' locks are taken inside it.
    mailboxes: Mutex<HashMap<String, Arc<Mailbox>>>,
    stats: Arc<Stats>,
}

impl LocalRoom {
    /// Hands `delivery` to the room's connections. Never blocks: a full
    /// mailbox gives up typing pings first; one that is full of actions is
    /// closed, and its connection with it (as a slow consumer).
    pub fn deliver(&self, delivery: &Delivery) {
        let mut mailboxes = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        match delivery {
            Delivery::Frame(frame) => mailboxes.retain(|_, mailbox| match mailbox.push(frame) {
                Fit::Queued => {
                    self.stats.delivered();
                    true
                }
                Fit::Coalesced => {
                    self.stats.dropped(DropReason::Coalesced);
                    true
                }
                Fit::TypingDropped => {
                    self.stats.dropped(DropReason::QueueFull);
                    true
                }
                Fit::Overflow => {
                    self.stats.dropped(DropReason::SlowConsumer);
                    false
                }
            }),
            Delivery::Replaced { conn } => {
                if let Some(mailbox) = mailboxes.remove(conn) {
                    mailbox.replace();
                }
            }
        }
    }

    fn detach(&self, conn: &str) -> bool {
        let mut mailboxes = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        mailboxes.remove(conn);
        mailboxes.is_empty()
    }
}

/// The rooms of one node.
#[derive(Debug)]
pub struct Hub {
    // Held only to look up, add or remove rooms and queues, and to tell the
    // backplane about it (which never blocks): no `.await` while held.
    rooms: Mutex<HashMap<RoomName, Arc<LocalRoom>>>,
    backplane: AnyBackplane,
    stats: Arc<Stats>,
    queue_capacity: usize,
    limits: Limits,
    clock: Clock,
    tasks: TaskTracker,
}

/// A connection's seat in a room. Dropping it leaves the room.
#[derive(Debug)]
pub struct Membership {
    /// Frames to send to this connection, in order. Ends (`None`) if the
    /// connection overflowed it, as a slow consumer.
    pub outbound: Arc<Mailbox>,
    attachment: Attachment,
    clean: bool,
}

impl Membership {
    /// The connection is leaving on purpose: its seat is freed at once
    /// instead of being kept for the grace period.
    pub fn leave_cleanly(&mut self) {
        self.clean = true;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let hub = self.attachment.hub.clone();
        let room = self.attachment.room.clone();
        let conn = self.attachment.conn.clone();
        let clean = self.clean;
        // Tracked: a shutting-down server waits until the room was told.
        self.attachment
            .hub
            .tasks
            .spawn(async move { hub.disconnect(room, conn, clean).await });
    }
}

/// A connection's queue in a local room; dropping it detaches the queue.
#[derive(Debug)]
struct Attachment {
    hub: Arc<Hub>,
    room: RoomName,
    conn: String,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.hub.detach(&self.room, &self.conn);
    }
}

impl Hub {
    /// A hub whose rooms meet other nodes' through `backplane`, with each
    /// connection's mailbox holding `queue_capacity` frames. Telling a room
    /// that a connection ended is a task of `tasks`, which a server waits
    /// for when it shuts down.
    pub fn new(
        backplane: AnyBackplane,
        stats: Arc<Stats>,
        queue_capacity: usize,
        limits: Limits,
        clock: Clock,
        tasks: TaskTracker,
    ) -> Arc<Self> {
        Arc::new(Self {
            rooms: Mutex::default(),
            backplane,
            stats,
            queue_capacity: queue_capacity.max(1),
            limits,
            clock,
            tasks,
        })
    }

    /// Seats connection `request.conn` in `room`. Its mailbox is attached
    /// before the seat is taken, so it misses nothing after the snapshot
    /// (frames up to `Joined::seq` are in the snapshot and can be skipped).
    pub async fn join(
        self: &Arc<Self>,
        room: &RoomName,
        request: JoinRequest,
    ) -> Result<(Membership, Joined), JoinError> {
        let outbound = Arc::new(Mailbox::new(self.queue_capacity));
        let attachment = self.attach(room, &request.conn, outbound.clone());
        let joined = self
            .backplane
            .join(room, request, self.limits, self.clock.now())
            .await?;
        let membership = Membership {
            outbound,
            attachment,
            clean: false,
        };
        Ok((membership, joined))
    }

    /// Relays `frame` from member `from` to everyone in `room`, on every node.
    pub async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
    ) -> Result<(), BackplaneError> {
        self.backplane
            .publish(room, from, frame, self.clock.now())
            .await
    }

    /// Relays the judge's verdict `action` about the player whose private id
    /// is `player` to everyone in `room`, on every node.
    pub async fn publish_verdict(
        &self,
        room: &RoomName,
        player: &PlayerKey,
        action: Action,
    ) -> Result<(), VerdictError> {
        self.backplane
            .publish_verdict(room, player, action, self.clock.now())
            .await
    }

    /// The backplane this hub's rooms go through.
    pub fn backplane(&self) -> &AnyBackplane {
        &self.backplane
    }

    /// The number of rooms with connections on this node.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn attach(self: &Arc<Self>, room: &RoomName, conn: &str, mailbox: Arc<Mailbox>) -> Attachment {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let local = rooms.entry(room.clone()).or_insert_with(|| {
            let local = Arc::new(LocalRoom {
                mailboxes: Mutex::default(),
                stats: self.stats.clone(),
            });
            self.backplane.subscribe(room, local.clone());
            local
        });
        local
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conn.to_owned(), mailbox);
        self.stats.set_rooms(rooms.len());
        Attachment {
            hub: self.clone(),
            room: room.clone(),
            conn: conn.to_owned(),
        }
    }

    fn detach(&self, room: &RoomName, conn: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(room).is_some_and(|local| local.detach(conn)) {
            rooms.remove(room);
            self.backplane.unsubscribe(room);
            self.stats.set_rooms(rooms.len());
        }
    }

    async fn disconnect(self: Arc<Self>, room: RoomName, conn: String, clean: bool) {
        let now = self.clock.now();
        match self
            .backplane
            .disconnect(&room, &conn, clean, self.limits, now)
            .await
        {
            Ok(Some(deadline)) => {
                // Not tracked: shutting down does not wait for grace periods.
                tokio::spawn(async move { self.expire_at(room, deadline).await });
            }
            Ok(None) => {}
            Err(error) => warn!(%room, %error, "seat not released"),
        }
    }

    /// Waits for each grace period of `room` to run out, and frees the seats;
    /// while the backplane is unavailable, tries again every
    /// [`EXPIRE_RETRY`].
    async fn expire_at(&self, room: RoomName, mut deadline: u64) {
        loop {
            tokio::time::sleep_until(self.clock.instant(deadline)).await;
            let now = self.clock.now();
            match self.backplane.expire(&room, now).await {
                Ok(Some(next)) => deadline = next,
                Ok(None) => return,
                Err(error) => {
                    warn!(%room, %error, "grace period not enforced yet");
                    deadline = now.saturating_add(EXPIRE_RETRY.as_millis() as u64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{Action, ClientEvent, PlayerKey, PresenceEvent, Role, ServerFrame},
        server::{backplane::MemoryBus, roster::Refusal},
    };

    const LIMITS: Limits = Limits {
        max_spectators: 1,
        grace_ms: 10_000,
    };

    fn hub_on(bus: &MemoryBus, capacity: usize, clock: Clock) -> Arc<Hub> {
        Hub::new(
            AnyBackplane::Memory(bus.node()),
            Arc::new(Stats::default()),
            capacity,
            LIMITS,
            clock,
            TaskTracker::new(),
        )
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn request(conn: &str, key: Option<&str>) -> JoinRequest {
        JoinRequest {
            conn: conn.into(),
            role: Role::Player,
            key: key.and_then(|k| PlayerKey::parse(&format!("{k:0>16}"))),
            new_id: format!("id-{conn}"),
        }
    }

    fn action(action: Action) -> ClientFrame {
        ClientFrame::new(ClientEvent::Action(action))
    }

    /// The next frame in a connection's mailbox, if one is there now.
    fn next_frame(membership: &mut Membership) -> Option<ServerFrame> {
        match try_next(membership)? {
            Outgoing::Frame(frame) => ServerFrame::parse(frame.text.as_str()),
            Outgoing::Replaced => None,
        }
    }

    fn try_next(membership: &Membership) -> Option<Outgoing> {
        let mut state = membership.outbound.state.lock().unwrap();
        state.queue.pop_front()
    }

    fn presence(frame: Option<ServerFrame>) -> (PresenceEvent, String) {
        match frame {
            Some(ServerFrame::Presence(p)) => (p.event, p.member.id),
            other => panic!("expected presence, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn hubs_on_one_bus_share_a_room_like_two_server_instances() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let (a, b) = (hub_on(&bus, 8, clock), hub_on(&bus, 8, clock));
        let (mut on_a, _) = a.join(&room("r"), request("ca", None)).await.unwrap();
        let (mut on_b, joined) = b.join(&room("r"), request("cb", None)).await.unwrap();
        assert_eq!(joined.members.len(), 2, "b's snapshot has a's player");
        let _elsewhere = b.join(&room("other"), request("cc", None)).await.unwrap();

        assert_eq!(
            presence(next_frame(&mut on_a)),
            (PresenceEvent::Join, "id-ca".into())
        );
        assert_eq!(
            presence(next_frame(&mut on_a)),
            (PresenceEvent::Join, "id-cb".into())
        );
        assert_eq!(
            presence(next_frame(&mut on_b)),
            (PresenceEvent::Join, "id-cb".into())
        );

        a.publish(&room("r"), "id-ca", action(Action::Running))
            .await
            .unwrap();
        for membership in [&mut on_a, &mut on_b] {
            let frame = next_frame(membership).unwrap();
            assert_eq!(
                frame.to_json(),
                r#"{"type":"action","action":"RUNNING","from":"id-ca","seq":3}"#
            );
        }
        assert!(
            next_frame(&mut on_b).is_none(),
            "nothing from the other room"
        );
    }

    #[tokio::test]
    async fn a_third_player_is_refused_and_leaves_nothing_behind() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 8, clock);
        let _a = hub.join(&room("r"), request("c1", None)).await.unwrap();
        let _b = hub.join(&room("r"), request("c2", None)).await.unwrap();
        let third = hub.join(&room("r"), request("c3", None)).await;
        assert!(matches!(third, Err(JoinError::Refused(Refusal::RoomFull))));
        assert_eq!(hub.room_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_player_is_reconnecting_then_leaves_after_the_grace_period() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 8, clock);
        let (dropped, _) = hub
            .join(&room("r"), request("c1", Some("k1")))
            .await
            .unwrap();
        let (mut stays, _) = hub.join(&room("r"), request("c2", None)).await.unwrap();
        next_frame(&mut stays);
        drop(dropped);

        let event = stays.outbound.recv().await;
        let Some(Outgoing::Frame(frame)) = event else {
            panic!("{event:?}")
        };
        let reconnecting = presence(ServerFrame::parse(frame.text.as_str()));
        assert_eq!(reconnecting, (PresenceEvent::Reconnecting, "id-c1".into()));

        let before = Instant::now();
        let event = stays.outbound.recv().await;
        let Some(Outgoing::Frame(frame)) = event else {
            panic!("{event:?}")
        };
        let left = presence(ServerFrame::parse(frame.text.as_str()));
        assert_eq!(left, (PresenceEvent::Leave, "id-c1".into()));
        assert_eq!(before.elapsed(), Duration::from_millis(LIMITS.grace_ms));
    }

    #[tokio::test]
    async fn a_newer_connection_with_the_same_key_replaces_the_older_one() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 8, clock);
        let (mut old, _) = hub
            .join(&room("r"), request("c1", Some("k1")))
            .await
            .unwrap();
        let (_new, joined) = hub
            .join(&room("r"), request("c2", Some("k1")))
            .await
            .unwrap();
        assert!(joined.seat.resumed);
        next_frame(&mut old);
        assert!(matches!(try_next(&old), Some(Outgoing::Replaced)));
        assert!(old.outbound.recv().await.is_none());
    }

    fn typing_from(from: &str, seq: u64) -> Outbound {
        Outbound::typing(format!("typing {from} {seq}"), seq, from.into())
    }

    fn lasting(seq: u64) -> Outbound {
        Outbound::lasting(format!("action {seq}"), seq)
    }

    fn drain(mailbox: &Mailbox) -> Vec<String> {
        let mut state = mailbox.state.lock().unwrap();
        state
            .queue
            .drain(..)
            .map(|o| match o {
                Outgoing::Frame(f) => f.text.as_str().to_owned(),
                Outgoing::Replaced => "replaced".into(),
            })
            .collect()
    }

    #[test]
    fn a_full_mailbox_keeps_only_each_senders_latest_typing_ping() {
        let mailbox = Mailbox::new(3);
        assert_eq!(mailbox.push(&typing_from("a", 1)), Fit::Queued);
        assert_eq!(mailbox.push(&lasting(2)), Fit::Queued);
        assert_eq!(mailbox.push(&typing_from("b", 3)), Fit::Queued);
        assert_eq!(mailbox.push(&typing_from("a", 4)), Fit::Coalesced);
        assert_eq!(mailbox.push(&typing_from("c", 5)), Fit::TypingDropped);
        assert_eq!(drain(&mailbox), ["typing a 4", "action 2", "typing b 3"]);
    }

    #[test]
    fn an_action_pushes_out_a_typing_ping_and_overflows_only_when_all_must_arrive() {
        let mailbox = Mailbox::new(2);
        mailbox.push(&typing_from("a", 1));
        mailbox.push(&lasting(2));
        assert_eq!(mailbox.push(&lasting(3)), Fit::TypingDropped);
        assert_eq!(mailbox.push(&lasting(4)), Fit::Overflow);
        assert_eq!(mailbox.push(&lasting(5)), Fit::Overflow, "closed for good");
        assert_eq!(drain(&mailbox), ["action 2", "action 3"]);
    }

    #[tokio::test]
    async fn a_reader_that_overflows_gets_what_was_queued_then_the_end() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 2, clock);
        let (slow, _) = hub.join(&room("r"), request("slow", None)).await.unwrap();
        for _ in 0..3 {
            hub.publish(&room("r"), "x", action(Action::Submitted))
                .await
                .unwrap();
        }
        assert_eq!(hub.stats.snapshot().slow_consumers, 1);
        assert!(matches!(
            slow.outbound.recv().await,
            Some(Outgoing::Frame(_))
        ));
        assert!(matches!(
            slow.outbound.recv().await,
            Some(Outgoing::Frame(_))
        ));
        assert!(slow.outbound.recv().await.is_none(), "then the end");
    }

    #[tokio::test]
    async fn the_last_connection_leaving_forgets_the_room() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 8, clock);
        let (mut first, _) = hub.join(&room("r"), request("c1", None)).await.unwrap();
        assert_eq!(hub.room_count(), 1);
        first.leave_cleanly();
        drop(first);
        assert_eq!(hub.room_count(), 0);
    }
}
