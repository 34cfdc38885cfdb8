//! The in-process backplane: a bus shared by the hubs of one process, which
//! also keeps each room's roster and sequence number.
//!
//! One hub per process in production; tests wire several hubs to one bus to
//! stand for several server instances.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use super::{numbered, presence, Backplane, BackplaneError, JoinError, Joined, VerdictError};
use crate::{
    protocol::{
        Action, ClientEvent, ClientFrame, MemberRef, PlayerKey, PresenceEvent, RoomName,
        ServerFrame,
    },
    server::{
        hub::{Delivery, LocalRoom},
        roster::{JoinRequest, Limits, Roster},
    },
};

/// Rooms, their rosters and their subscribed nodes, shared by every
/// [`MemoryBackplane`] made from it.
#[derive(Clone, Default)]
pub struct MemoryBus {
    // Held for roster updates and for handing frames to each subscribed
    // room's queues, which never blocks: no `.await` while it is held.
    // Delivering under it keeps every room's frames in `seq` order.
    rooms: Arc<Mutex<HashMap<RoomName, BusRoom>>>,
    next_node: Arc<AtomicU64>,
}

#[derive(Default)]
struct BusRoom {
    seq: u64,
    roster: Roster,
    nodes: Vec<(u64, Arc<LocalRoom>)>,
}

impl BusRoom {
    fn deliver(&self, delivery: &Delivery) {
        for (_, sink) in &self.nodes {
            sink.deliver(delivery);
        }
    }

    /// Numbers the next frame of the room and delivers it to every node.
    /// Under the bus lock, so frames go out in `seq` order.
    fn broadcast(&mut self, frame: ServerFrame) {
        self.seq += 1;
        self.deliver(&numbered(frame, self.seq));
    }

    fn presence(&mut self, event: PresenceEvent, member: MemberRef) {
        self.broadcast(presence(event, member));
    }

    fn is_unused(&self) -> bool {
        self.nodes.is_empty() && self.roster.is_empty()
    }
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backplane for one more node (hub) on this bus.
    pub fn node(&self) -> MemoryBackplane {
        MemoryBackplane {
            bus: self.clone(),
            node: self.next_node.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, BusRoom>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One node's handle on a [`MemoryBus`].
pub struct MemoryBackplane {
    bus: MemoryBus,
    node: u64,
}

impl fmt::Debug for MemoryBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackplane")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Backplane for MemoryBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>) {
        let mut rooms = self.bus.lock();
        let nodes = &mut rooms.entry(room.clone()).or_default().nodes;
        nodes.retain(|(node, _)| *node != self.node);
        nodes.push((self.node, sink));
    }

    fn unsubscribe(&self, room: &RoomName) {
        let mut rooms = self.bus.lock();
        if let Some(entry) = rooms.get_mut(room) {
            entry.nodes.retain(|(node, _)| *node != self.node);
            if entry.is_unused() {
                rooms.remove(room);
            }
        }
    }

    fn ready(&self) -> Result<(), BackplaneError> {
        Ok(())
    }

    async fn join(
        &self,
        room: &RoomName,
        request: JoinRequest,
        limits: Limits,
        now: u64,
    ) -> Result<Joined, JoinError> {
        let mut rooms = self.bus.lock();
        let entry = rooms.entry(room.clone()).or_default();
        let seat = entry.roster.join(request, &limits)?;
        if let Some(conn) = &seat.replaced {
            entry.deliver(&Delivery::Replaced { conn: conn.clone() });
        }
        if let Some(event) = seat.event {
            entry.presence(event, seat.member.clone());
        }
        Ok(Joined {
            seat,
            seq: entry.seq,
            members: entry.roster.snapshot(now),
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
        let mut rooms = self.bus.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return Ok(None);
        };
        let mut deadline = None;
        if let Some((event, member)) = entry.roster.disconnect(conn, clean, &limits, now) {
            if event == PresenceEvent::Reconnecting {
                deadline = entry.roster.poll_timeout();
            }
            entry.presence(event, member);
        }
        if entry.is_unused() {
            rooms.remove(room);
        }
        Ok(deadline)
    }

    async fn expire(&self, room: &RoomName, now: u64) -> Result<Option<u64>, BackplaneError> {
        let mut rooms = self.bus.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return Ok(None);
        };
        for member in entry.roster.expire(now) {
            entry.presence(PresenceEvent::Leave, member);
        }
        let next = entry.roster.poll_timeout();
        if entry.is_unused() {
            rooms.remove(room);
        }
        Ok(next)
    }

    async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
        now: u64,
    ) -> Result<(), BackplaneError> {
        let mut rooms = self.bus.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return Ok(());
        };
        entry.roster.record(from, frame.event, now);
        entry.broadcast(ServerFrame::relayed(frame, from.to_owned(), 0));
        Ok(())
    }

    async fn publish_verdict(
        &self,
        room: &RoomName,
        player: &PlayerKey,
        action: Action,
        now: u64,
    ) -> Result<(), VerdictError> {
        let mut rooms = self.bus.lock();
        let entry = rooms.get_mut(room).ok_or(VerdictError::NoSuchPlayer)?;
        let member = entry
            .roster
            .player_of(player)
            .ok_or(VerdictError::NoSuchPlayer)?;
        entry
            .roster
            .record(&member.id, ClientEvent::Action(action), now);
        entry.broadcast(ServerFrame::verdict(action, member.id, 0));
        Ok(())
    }
}
