//! Rooms while the link is down, and catching up when it is back.
//!
//! Each subscribed room keeps the highest `seq` it handed out and what its
//! members did while the link was down. Frames then reach this instance's
//! members only, numbered after the last one seen; disconnections are
//! queued. Once the link is back, [`Instance::resync`] replays the queue,
//! seats this instance's members again if Redis lost them, writes what was
//! remembered, and sends each room a snapshot.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{watch, Notify};

use super::{codec::record_field, local_first::LocalFirst, lock, Instance, LocalSeat};
use crate::{
    protocol::{
        typing_sender, ClientEvent, MemberRef, Presence, PresenceEvent, RoomName, ServerFrame,
    },
    server::{
        backplane::{BackplaneError, RoomSink},
        room::JoinRequest,
    },
};

/// A disconnection that happened while the link was down.
#[derive(Debug, Clone)]
pub struct QueuedDisconnect {
    room: RoomName,
    conn: String,
    clean: bool,
    now: u64,
}

/// What a member did while the link was down, the last of each kind: who,
/// what and when.
type Unpublished = (String, ClientEvent, u64);

/// A room with connections on this instance, as the link serves it.
pub struct Subscription {
    /// The room.
    pub room: RoomName,
    /// Where the room's frames go.
    pub sink: Arc<dyn RoomSink>,
    /// True once the room's channel is subscribed.
    subscribed: watch::Sender<bool>,
    // Held while handing a frame to the room, so frames go out in `seq`
    // order; nothing awaited while held.
    log: Mutex<RoomLog>,
    /// The room's writer wrote everything it had, or gave up.
    pub drained: Notify,
}

#[derive(Debug, Default)]
pub struct RoomLog {
    /// The highest `seq` handed to the room.
    pub seq: u64,
    /// Whether this instance numbers the room's frames itself, and what it
    /// numbered that Redis does not have yet.
    pub first: LocalFirst,
    /// What members did while the link was down, by the hash field that
    /// records it.
    unpublished: HashMap<String, Unpublished>,
    /// Frames were handed out here while the link was down: the room's
    /// history in Redis lacks them.
    delivered_offline: bool,
}

impl Subscription {
    /// A room whose channel is not subscribed yet.
    pub fn new(room: RoomName, sink: Arc<dyn RoomSink>) -> Self {
        Self {
            room,
            sink,
            subscribed: watch::Sender::new(false),
            log: Mutex::default(),
            drained: Notify::new(),
        }
    }

    /// The room's channel is subscribed.
    pub fn mark_subscribed(&self) {
        self.subscribed.send_replace(true);
    }

    /// Waits until the room's channel is subscribed.
    pub async fn subscribed(&self) -> Result<(), BackplaneError> {
        let mut subscribed = self.subscribed.subscribe();
        subscribed
            .wait_for(|yes| *yes)
            .await
            .map(drop)
            .map_err(|_| BackplaneError::Unavailable)
    }

    pub fn log(&self) -> MutexGuard<'_, RoomLog> {
        lock(&self.log)
    }

    /// A frame numbered `seq` that the room's members got already: the
    /// room's numbering moves past it.
    pub fn skip(&self, seq: u64) {
        let mut log = self.log();
        log.seq = log.seq.max(seq);
    }

    /// Hands the room a frame numbered `seq`.
    pub fn deliver(&self, seq: u64, frame: ServerFrame) {
        let mut log = self.log();
        log.seq = log.seq.max(seq);
        self.sink.deliver(seq, frame);
    }

    /// Hands the room a stamped frame numbered `seq`, already written.
    pub fn deliver_text(&self, seq: u64, text: String) {
        let typing_from = typing_sender(&text).map(Arc::from);
        let mut log = self.log();
        log.seq = log.seq.max(seq);
        self.sink.deliver_text(seq, text, typing_from);
    }
}

impl RoomLog {
    /// Remembers what member `id` did at `now` that Redis does not have:
    /// frames were handed out here that the room's history lacks.
    pub fn remember(&mut self, id: &str, event: &ClientEvent, now: u64) {
        let (field, _) = record_field(id, event, now);
        self.unpublished
            .insert(field, (id.to_owned(), event.clone(), now));
        self.delivered_offline = true;
    }
}

impl Instance {
    /// Hands `frame` to this instance's members of `room` only, numbered
    /// after the last frame they got, and remembers what it records: the
    /// link is down.
    pub(super) fn deliver_locally(
        &self,
        room: &RoomName,
        frame: ServerFrame,
        record: Option<(&str, &ClientEvent, u64)>,
    ) {
        let Some(local) = self.subscription(room) else {
            return;
        };
        let mut log = local.log();
        log.seq += 1;
        log.delivered_offline = true;
        if let Some((id, event, now)) = record {
            log.remember(id, event, now);
        }
        local.sink.deliver(log.seq, frame);
    }

    /// Connection `conn` of `member` ended while Redis could not be told:
    /// queues the disconnection, tells the members here, and returns the
    /// deadline of the grace period it started, if any.
    pub(super) fn disconnect_offline(
        &self,
        room: &RoomName,
        conn: &str,
        clean: bool,
        member: MemberRef,
        now: u64,
    ) -> Option<u64> {
        lock(&self.queued).push(QueuedDisconnect {
            room: room.clone(),
            conn: conn.to_owned(),
            clean,
            now,
        });
        let dropped = !clean && self.limits.grace_ms > 0;
        let event = if dropped {
            PresenceEvent::Reconnecting
        } else {
            PresenceEvent::Leave
        };
        let presence = ServerFrame::Presence(Presence {
            event,
            member,
            seq: 0,
        });
        self.deliver_locally(room, presence, None);
        dropped.then(|| now.saturating_add(self.limits.grace_ms))
    }

    /// After the link came back: replays the disconnections it missed, then
    /// brings each local room up to date and sends the room (on every
    /// instance) a snapshot.
    pub(super) async fn resync(&self) -> Result<(), BackplaneError> {
        let now = self.clock.now();
        loop {
            let Some(next) = lock(&self.queued).first().cloned() else {
                break;
            };
            self.update(&next.room, 0, |roster, commit| {
                commit
                    .change
                    .give_up_seat(roster, &next.conn, next.clean, &self.limits, next.now);
                commit.change.expire(roster, now);
                Ok::<_, BackplaneError>(())
            })
            .await?;
            lock(&self.queued).remove(0);
        }
        let rooms: Vec<(RoomName, Arc<Subscription>)> = lock(&self.rooms)
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
        local: &Subscription,
        now: u64,
    ) -> Result<(), BackplaneError> {
        self.drained(local).await?;
        let (floor, unpublished, delivered_offline) = {
            let log = local.log();
            (log.seq, log.unpublished.clone(), log.delivered_offline)
        };
        let seats: Vec<LocalSeat> = lock(&self.seats)
            .values()
            .filter(|seat| seat.room == *name)
            .cloned()
            .collect();
        let mut refused = Vec::new();
        self.update(name, floor, |roster, commit| {
            refused.clear();
            commit.snapshot_at = Some(now);
            commit.history_floor = delivered_offline.then_some(floor);
            commit.change.expire(roster, now);
            for seat in &seats {
                if roster.holds(&seat.request.conn) {
                    continue;
                }
                let request = JoinRequest {
                    new_id: seat.member.id.to_string(),
                    ..seat.request.clone()
                };
                if commit
                    .change
                    .take_seat(roster, request, &self.limits)
                    .is_err()
                {
                    refused.push(seat.request.conn.clone());
                }
            }
            for (field, (id, event, at)) in &unpublished {
                roster.record(id, event, *at);
                commit.also_forget.push(field.clone());
            }
            Ok::<_, BackplaneError>(())
        })
        .await?;
        {
            let mut log = local.log();
            log.unpublished.clear();
            log.delivered_offline = false;
        }
        for conn in refused {
            lock(&self.seats).remove(&conn);
            local.sink.replaced(&conn);
        }
        Ok(())
    }
}
