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

use super::{
    at_once, BackplaneError, JoinError, Joined, RoomSink, RoomStore, StoreFuture, Transport,
    VerdictError,
};
use crate::{
    protocol::{Action, ClientEvent, ClientFrame, MemberRef, PlayerKey, RoomName, ServerFrame},
    server::room::{Change, History, JoinRequest, Limits, Roster},
};

/// Rooms, their rosters and their subscribed instances, shared by every
/// [`MemoryBackplane`] made from it.
#[derive(Clone, Default)]
pub struct MemoryBus {
    // Held for roster updates and for handing frames to each subscribed
    // room's sink, which never blocks: no `.await` while it is held.
    // Delivering under it keeps every room's frames in `seq` order.
    // Boxed: a table has up to twice the slots it has rooms.
    rooms: Arc<Mutex<HashMap<RoomName, Box<RoomState>>>>,
    next_node: Arc<AtomicU64>,
}

/// One room on the bus: its sequence, roster, history and subscribed
/// instances.
struct RoomState {
    seq: u64,
    roster: Roster,
    history: History,
    sinks: Vec<(u64, Arc<dyn RoomSink>)>,
}

impl RoomState {
    fn new(limits: &Limits) -> Self {
        Self {
            seq: 0,
            roster: Roster::default(),
            history: History::new(limits.history_len),
            sinks: Vec::new(),
        }
    }

    /// Numbers the next frame of the room, records it in the history if it
    /// is an event, and delivers it to every instance. Under the bus lock,
    /// so frames go out in `seq` order.
    fn broadcast(&mut self, frame: ServerFrame, now: u64) {
        self.seq += 1;
        self.history.record(self.seq, now, &frame);
        // The last instance takes the frame itself: one instance, no copy.
        if let Some(((_, last), others)) = self.sinks.split_last() {
            for (_, sink) in others {
                sink.deliver(self.seq, frame.clone());
            }
            last.deliver(self.seq, frame);
        }
    }

    /// Carries out `change`: closes the replaced connections, then sends
    /// its presence frames.
    fn apply(&mut self, change: &Change, now: u64) {
        for conn in &change.replaced {
            for (_, sink) in &self.sinks {
                sink.replaced(conn);
            }
        }
        for frame in change.frames() {
            self.broadcast(frame, now);
        }
    }

    fn is_unused(&self) -> bool {
        self.sinks.is_empty() && self.roster.is_empty()
    }
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backplane for one more instance (hub) on this bus, whose rooms
    /// follow `limits`.
    pub fn node(&self, limits: Limits) -> MemoryBackplane {
        MemoryBackplane {
            bus: self.clone(),
            node: self.next_node.fetch_add(1, Ordering::Relaxed),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, Box<RoomState>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `change` on the room's state (a new one with `limits` if there
    /// is none), then forgets the room if nobody is left in it and no
    /// instance serves it.
    fn with_room<T>(
        &self,
        room: &RoomName,
        limits: &Limits,
        change: impl FnOnce(&mut RoomState) -> T,
    ) -> T {
        let mut rooms = self.lock();
        let state = rooms
            .entry(room.clone())
            .or_insert_with(|| Box::new(RoomState::new(limits)));
        let value = change(state);
        if state.is_unused() {
            rooms.remove(room);
        }
        value
    }
}

/// One instance's handle on a [`MemoryBus`].
pub struct MemoryBackplane {
    bus: MemoryBus,
    node: u64,
    limits: Limits,
}

impl fmt::Debug for MemoryBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackplane")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Transport for MemoryBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<dyn RoomSink>) {
        let mut rooms = self.bus.lock();
        let sinks = &mut rooms
            .entry(room.clone())
            .or_insert_with(|| Box::new(RoomState::new(&self.limits)))
            .sinks;
        sinks.retain(|(node, _)| *node != self.node);
        sinks.reserve_exact(1);
        sinks.push((self.node, sink));
    }

    fn unsubscribe(&self, room: &RoomName) {
        self.bus.with_room(room, &self.limits, |state| {
            state.sinks.retain(|(node, _)| *node != self.node);
        });
    }

    fn ready(&self) -> Result<(), BackplaneError> {
        Ok(())
    }
}

impl RoomStore for MemoryBackplane {
    fn join<'a>(
        &'a self,
        room: &'a RoomName,
        request: JoinRequest,
        now: u64,
    ) -> StoreFuture<'a, Result<Joined, JoinError>> {
        let joined = self.bus.with_room(room, &self.limits, |state| {
            let mut change = Change::default();
            let seat = change.take_seat(&mut state.roster, request, &self.limits)?;
            state.apply(&change, now);
            Ok(Joined {
                seat,
                seq: state.seq,
                members: state.roster.snapshot(now),
                history: state.history.entries().cloned().collect(),
                history_floor: state.history.floor(),
            })
        });
        at_once(joined)
    }

    fn disconnect<'a>(
        &'a self,
        room: &'a RoomName,
        conn: &'a str,
        clean: bool,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>> {
        let deadline = self.bus.with_room(room, &self.limits, |state| {
            let mut change = Change::default();
            let deadline = change.give_up_seat(&mut state.roster, conn, clean, &self.limits, now);
            state.apply(&change, now);
            deadline
        });
        at_once(Ok(deadline))
    }

    fn expire<'a>(
        &'a self,
        room: &'a RoomName,
        now: u64,
    ) -> StoreFuture<'a, Result<Option<u64>, BackplaneError>> {
        let next = self.bus.with_room(room, &self.limits, |state| {
            let mut change = Change::default();
            let next = change.expire(&mut state.roster, now);
            state.apply(&change, now);
            next
        });
        at_once(Ok(next))
    }

    fn publish(
        &self,
        room: &RoomName,
        from: &MemberRef,
        frame: ClientFrame,
        now: u64,
    ) -> StoreFuture<'static, Result<(), BackplaneError>> {
        if let Some(state) = self.bus.lock().get_mut(room) {
            state.roster.record(&from.id, &frame.event, now);
            state.broadcast(ServerFrame::relayed(frame, from, 0), now);
        }
        at_once(Ok(()))
    }

    fn publish_verdict<'a>(
        &'a self,
        room: &'a RoomName,
        player: &'a PlayerKey,
        action: Action,
        now: u64,
    ) -> StoreFuture<'a, Result<(), VerdictError>> {
        let mut rooms = self.bus.lock();
        let published = match rooms.get_mut(room) {
            Some(state) => match state.roster.player_of(player) {
                Some(member) => {
                    state
                        .roster
                        .record(&member.id, &ClientEvent::Action(action), now);
                    state.broadcast(ServerFrame::verdict(action, &member, 0), now);
                    Ok(())
                }
                None => Err(VerdictError::NoSuchPlayer),
            },
            None => Err(VerdictError::NoSuchPlayer),
        };
        at_once(published)
    }
}
