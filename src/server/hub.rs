//! Rooms on this instance: each connection's seat and mailbox, and the
//! grace periods of the seats it gave up.
//!
//! A connection [`join`](Hub::join)s a room and gets a [`Membership`]: its
//! mailbox of outgoing frames, and a guard that, when dropped, whatever way
//! the connection ends, detaches the mailbox and gives up the seat (at once
//! if the connection left cleanly, after the grace period otherwise). The
//! hub subscribes the room's [`LocalRoom`] to the backplane with the first
//! local connection and unsubscribes with the last. Grace periods run from
//! one deadline table, served by one task the hub owns.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
use tracing::warn;

pub use super::backplane::{BackplaneError, JoinError, Joined, VerdictError};
use super::{
    backplane::{RoomLink, SharedBackplane, StoreFuture},
    clock::{millis, Clock},
    fanout::{LocalRoom, Mailbox},
    room::JoinRequest,
    stats::Stats,
    timers::Timers,
};
use crate::protocol::{Action, ClientFrame, MemberRef, PlayerKey, RoomName};

/// How soon a grace period that could not be enforced is tried again.
const EXPIRE_RETRY: Duration = Duration::from_secs(1);

/// The rooms of this instance.
#[derive(Debug)]
pub struct Hub {
    // Held only to look up, add or remove rooms and mailboxes, and to tell
    // the backplane about it (which never blocks): no `.await` while held.
    rooms: Mutex<HashMap<RoomName, Arc<LocalRoom>>>,
    /// Set by [`shut_down`](Hub::shut_down), read and written under the
    /// rooms' lock: a mailbox attached after it is told at once.
    closing: AtomicBool,
    backplane: SharedBackplane,
    stats: Arc<Stats>,
    queue_capacity: usize,
    clock: Clock,
    tasks: TaskTracker,
    grace: Arc<Timers<RoomName>>,
    _grace_task: AbortOnDropHandle<()>,
}

/// A connection's seat in a room. Dropping it leaves the room.
#[derive(Debug)]
pub struct Membership {
    /// Frames to send to this connection, in order. Ends (`None`) if the
    /// connection overflowed it, as a slow consumer.
    pub outbound: Arc<Mailbox>,
    link: Arc<dyn RoomLink>,
    attachment: Attachment,
    clean: bool,
}

impl Membership {
    /// The connection is leaving on purpose: its seat is freed at once
    /// instead of being kept for the grace period.
    pub fn leave_cleanly(&mut self) {
        self.clean = true;
    }

    /// The connection's id, shared with the room's list of mailboxes.
    pub fn conn(&self) -> &Arc<str> {
        &self.attachment.conn
    }

    /// Relays `frame` from member `from`, received at `at`, to everyone in
    /// the room, on every instance.
    pub fn publish(
        &self,
        from: &MemberRef,
        frame: ClientFrame,
        at: Instant,
    ) -> StoreFuture<'static, Result<(), BackplaneError>> {
        let now = self.attachment.hub.clock.at(at);
        self.link.publish(from, frame, now)
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

/// A connection's mailbox in a local room; dropping it detaches the mailbox.
#[derive(Debug)]
struct Attachment {
    hub: Arc<Hub>,
    room: RoomName,
    conn: Arc<str>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.hub.detach(&self.room, &self.conn);
    }
}

impl Hub {
    /// A hub whose rooms meet other instances' through `backplane`, with
    /// each connection's mailbox holding `queue_capacity` frames. Telling a
    /// room that a connection ended is a task of `tasks`, which a server
    /// waits for when it shuts down.
    pub fn new(
        backplane: SharedBackplane,
        stats: Arc<Stats>,
        queue_capacity: usize,
        clock: Clock,
        tasks: TaskTracker,
    ) -> Arc<Self> {
        let grace = Timers::new(clock);
        let grace_task = tokio::spawn(expire_seats(grace.clone(), backplane.clone()));
        Arc::new(Self {
            rooms: Mutex::default(),
            closing: AtomicBool::new(false),
            backplane,
            stats,
            queue_capacity: queue_capacity.max(1),
            clock,
            tasks,
            grace,
            _grace_task: AbortOnDropHandle::new(grace_task),
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
        let joined = self.backplane.join(room, request, self.clock.now()).await?;
        let membership = Membership {
            outbound,
            link: joined.link.clone(),
            attachment,
            clean: false,
        };
        Ok((membership, joined))
    }

    /// Relays the judge's verdict `action` about the player whose private id
    /// is `player` to everyone in `room`, on every instance.
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

    /// `Ok` if the hub's rooms can reach the other instances now.
    pub fn ready(&self) -> Result<(), BackplaneError> {
        self.backplane.ready()
    }

    /// The server is shutting down: every connection is told through its
    /// mailbox (after what is queued for it) and closes with 1001, and so
    /// does any connection that joins from now on.
    pub fn shut_down(&self) {
        let rooms = self.lock();
        self.closing.store(true, Ordering::Relaxed);
        for local in rooms.values() {
            local.shut_down();
        }
    }

    /// The instance's live counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The number of rooms with connections on this instance.
    pub fn room_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, Arc<LocalRoom>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn attach(self: &Arc<Self>, room: &RoomName, conn: &str, mailbox: Arc<Mailbox>) -> Attachment {
        let mut rooms = self.lock();
        let local = rooms.entry(room.clone()).or_insert_with(|| {
            let local = Arc::new(LocalRoom::new(self.stats.clone()));
            self.backplane.subscribe(room, local.clone());
            local
        });
        if self.closing.load(Ordering::Relaxed) {
            mailbox.shut_down();
        }
        let conn: Arc<str> = conn.into();
        local.attach(conn.clone(), mailbox);
        self.stats.set_rooms(rooms.len());
        Attachment {
            hub: self.clone(),
            room: room.clone(),
            conn,
        }
    }

    fn detach(&self, room: &RoomName, conn: &str) {
        let mut rooms = self.lock();
        if rooms.get(room).is_some_and(|local| local.detach(conn)) {
            rooms.remove(room);
            self.backplane.unsubscribe(room);
            self.stats.set_rooms(rooms.len());
        }
    }

    async fn disconnect(self: Arc<Self>, room: RoomName, conn: Arc<str>, clean: bool) {
        let now = self.clock.now();
        match self.backplane.disconnect(&room, &conn, clean, now).await {
            Ok(Some(deadline)) => self.grace.insert(room, deadline),
            Ok(None) => {}
            Err(error) => warn!(%room, %error, "seat not released"),
        }
    }
}

/// Frees the seats whose grace period ran out, room by room, when the
/// table says; while the backplane is unavailable, tries again every
/// [`EXPIRE_RETRY`].
async fn expire_seats(grace: Arc<Timers<RoomName>>, backplane: SharedBackplane) {
    grace
        .run(|room, now| {
            let backplane = backplane.clone();
            async move {
                match backplane.expire(&room, now).await {
                    Ok(next) => next,
                    Err(error) => {
                        warn!(%room, %error, "grace period not enforced yet");
                        Some(now.saturating_add(millis(EXPIRE_RETRY)))
                    }
                }
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;
    use crate::{
        protocol::{Action, ClientEvent, PlayerKey, PresenceEvent, Role, ServerFrame},
        server::{
            backplane::{Limits, MemoryBus},
            fanout::Outgoing,
            room::{Refusal, HISTORY_LEN},
        },
    };

    const LIMITS: Limits = Limits {
        max_spectators: 1,
        grace_ms: 10_000,
        history_len: HISTORY_LEN,
    };

    fn hub_on(bus: &MemoryBus, capacity: usize, clock: Clock) -> Arc<Hub> {
        Hub::new(
            Arc::new(bus.node(LIMITS)),
            Arc::new(Stats::default()),
            capacity,
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
            name: None,
        }
    }

    fn action(action: Action) -> ClientFrame {
        ClientFrame::new(ClientEvent::Action(action))
    }

    /// The next frame in a connection's mailbox, if one is there now.
    fn next_frame(membership: &mut Membership) -> Option<ServerFrame> {
        match try_next(membership)? {
            Outgoing::Frame(frame) => ServerFrame::parse(frame.text.as_str()),
            Outgoing::Replaced | Outgoing::Shutdown => None,
        }
    }

    fn try_next(membership: &Membership) -> Option<Outgoing> {
        match membership.outbound.try_recv() {
            Poll::Ready(next) => next,
            Poll::Pending => None,
        }
    }

    fn presence(frame: Option<ServerFrame>) -> (PresenceEvent, String) {
        match frame {
            Some(ServerFrame::Presence(p)) => (p.event, p.member.id.to_string()),
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

        on_a.publish(
            &MemberRef::new("id-ca", Role::Player),
            action(Action::Running),
            Instant::now(),
        )
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
    async fn a_shutdown_reaches_every_mailbox_after_its_frames_and_every_later_join() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 8, clock);
        let (mut first, _) = hub.join(&room("r"), request("c1", None)).await.unwrap();
        let (mut elsewhere, _) = hub.join(&room("s"), request("c2", None)).await.unwrap();
        hub.shut_down();
        let (late, _) = hub.join(&room("r"), request("c3", None)).await.unwrap();
        let joined = presence(next_frame(&mut first));
        assert_eq!(joined, (PresenceEvent::Join, "id-c1".into()));
        let joined = presence(next_frame(&mut elsewhere));
        assert_eq!(joined, (PresenceEvent::Join, "id-c2".into()));
        for membership in [&first, &elsewhere, &late] {
            assert!(matches!(try_next(membership), Some(Outgoing::Shutdown)));
            assert!(try_next(membership).is_none(), "nothing after it");
        }
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

    #[tokio::test]
    async fn a_reader_that_overflows_gets_what_was_queued_then_the_end() {
        let (bus, clock) = (MemoryBus::new(), Clock::new());
        let hub = hub_on(&bus, 2, clock);
        let (slow, _) = hub.join(&room("r"), request("slow", None)).await.unwrap();
        for _ in 0..3 {
            slow.publish(
                &MemberRef::new("x", Role::Player),
                action(Action::Submitted),
                Instant::now(),
            )
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
