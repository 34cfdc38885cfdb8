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

use smallvec::SmallVec;

use super::{
    at_once, BackplaneError, JoinError, Joined, RoomLink, RoomSink, RoomStore, StoreFuture,
    Transport, VerdictError,
};
use crate::{
    protocol::{Action, ClientEvent, ClientFrame, MemberRef, PlayerKey, RoomName, ServerFrame},
    server::room::{Change, History, JoinRequest, Limits, Roster},
};

/// Rooms, their rosters and their subscribed instances, shared by every
/// [`MemoryBackplane`] made from it.
#[derive(Clone, Default)]
pub struct MemoryBus {
    // Held to find, add or forget a room, then that room's own lock (never
    // the other way round): a frame takes its room's lock and not this one.
    rooms: Arc<Mutex<HashMap<RoomName, Arc<MemoryRoom>>>>,
    next_node: Arc<AtomicU64>,
}

/// One room on the bus, shared by the map and its members' links.
struct MemoryRoom {
    // Held for roster updates and for handing frames to each subscribed
    // instance's sink, which never blocks: no `.await` while it is held.
    // Delivering under it keeps the room's frames in `seq` order.
    state: Mutex<RoomState>,
}

impl MemoryRoom {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRoom").finish_non_exhaustive()
    }
}

impl RoomLink for MemoryRoom {
    fn publish(
        &self,
        from: &MemberRef,
        frame: ClientFrame,
        now: u64,
    ) -> StoreFuture<'static, Result<(), BackplaneError>> {
        let mut state = self.lock();
        state.roster.record(&from.id, &frame.event, now);
        state.broadcast(ServerFrame::relayed(frame, from, 0), now);
        at_once(Ok(()))
    }
}

/// One room on the bus: its sequence, roster, history and subscribed
/// instances.
struct RoomState {
    seq: u64,
    roster: Roster,
    history: History,
    /// Inline for the one instance of a process: a frame reaches it
    /// without a pointer to chase (with 9,000 rooms, a cache miss).
    sinks: SmallVec<[(u64, Arc<dyn RoomSink>); 1]>,
}

impl RoomState {
    fn new(limits: &Limits) -> Self {
        Self {
            seq: 0,
            roster: Roster::default(),
            history: History::new(limits.history_len),
            sinks: SmallVec::new(),
        }
    }

    /// Numbers the next frame of the room, records it in the history if it
    /// is an event, and delivers it to every instance. Under the room's
    /// lock, so frames go out in `seq` order.
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

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, Arc<MemoryRoom>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `change` on the room (a new one with `limits` if there is
    /// none) and its state, then forgets the room if nobody is left in it
    /// and no instance serves it.
    fn with_room<T>(
        &self,
        room: &RoomName,
        limits: &Limits,
        change: impl FnOnce(&Arc<MemoryRoom>, &mut RoomState) -> T,
    ) -> T {
        let mut rooms = self.lock();
        let shared = rooms.entry(room.clone()).or_insert_with(|| {
            Arc::new(MemoryRoom {
                state: Mutex::new(RoomState::new(limits)),
            })
        });
        let mut state = shared.lock();
        let value = change(shared, &mut state);
        if state.is_unused() {
            drop(state);
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
        self.bus.with_room(room, &self.limits, |_, state| {
            let sinks = &mut state.sinks;
            sinks.retain(|(node, _)| *node != self.node);
            sinks.reserve_exact(1);
            sinks.push((self.node, sink));
        });
    }

    fn unsubscribe(&self, room: &RoomName) {
        self.bus.with_room(room, &self.limits, |_, state| {
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
        let joined = self.bus.with_room(room, &self.limits, |shared, state| {
            let mut change = Change::default();
            let seat = change.take_seat(&mut state.roster, request, &self.limits)?;
            state.apply(&change, now);
            Ok(Joined {
                seat,
                seq: state.seq,
                members: state.roster.snapshot(now),
                history: state.history.entries().cloned().collect(),
                history_floor: state.history.floor(),
                link: shared.clone(),
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
        let deadline = self.bus.with_room(room, &self.limits, |_, state| {
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
        let next = self.bus.with_room(room, &self.limits, |_, state| {
            let mut change = Change::default();
            let next = change.expire(&mut state.roster, now);
            state.apply(&change, now);
            next
        });
        at_once(Ok(next))
    }

    fn publish_verdict<'a>(
        &'a self,
        room: &'a RoomName,
        player: &'a PlayerKey,
        action: Action,
        now: u64,
    ) -> StoreFuture<'a, Result<(), VerdictError>> {
        let rooms = self.bus.lock();
        let Some(mut state) = rooms.get(room).map(|shared| shared.lock()) else {
            return at_once(Err(VerdictError::NoSuchPlayer));
        };
        let published = match state.roster.player_of(player) {
            Some(member) => {
                state
                    .roster
                    .record(&member.id, &ClientEvent::Action(action), now);
                state.broadcast(ServerFrame::verdict(action, &member, 0), now);
                Ok(())
            }
            None => Err(VerdictError::NoSuchPlayer),
        };
        at_once(published)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc, thread, time::Duration};

    use futures_util::FutureExt;

    use super::*;
    use crate::{protocol::Role, server::room::HISTORY_LEN};

    const LIMITS: Limits = Limits {
        max_spectators: 1,
        grace_ms: 10_000,
        history_len: HISTORY_LEN,
    };

    /// The seqs an instance was handed.
    #[derive(Default)]
    struct Seqs(Mutex<Vec<u64>>);

    impl RoomSink for Seqs {
        fn deliver(&self, seq: u64, _: ServerFrame) {
            self.0.lock().unwrap().push(seq);
        }

        fn deliver_text(&self, seq: u64, _: String, _: Option<Arc<str>>) {
            self.0.lock().unwrap().push(seq);
        }

        fn replaced(&self, _: &str) {}
    }

    /// A frame takes its own room's lock and no other: it is relayed while
    /// another room is being changed (a join, a leave) on another thread.
    #[test]
    fn a_frame_is_relayed_while_another_room_is_being_changed() {
        let bus = MemoryBus::new();
        let node = bus.node(LIMITS);
        let (room, other) = (RoomName::parse("r").unwrap(), RoomName::parse("o").unwrap());
        let seqs = Arc::new(Seqs::default());
        node.subscribe(&room, seqs.clone());
        let request = JoinRequest {
            conn: "c1".into(),
            role: Role::Player,
            key: None,
            new_id: "m1".into(),
            name: None,
        };
        let joined = node
            .join(&room, request, 0)
            .now_or_never()
            .unwrap()
            .unwrap();
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        thread::scope(|scope| {
            scope.spawn(|| {
                bus.with_room(&other, &LIMITS, move |_, _| {
                    held_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                });
            });
            held_rx.recv().unwrap();
            scope.spawn(|| {
                let frame = ClientFrame::new(ClientEvent::Action(Action::Running));
                let published = joined.link.publish(&joined.seat.member, frame, 1);
                done_tx.send(published.now_or_never().is_some()).unwrap();
            });
            let relayed = done_rx.recv_timeout(Duration::from_secs(10));
            release_tx.send(()).unwrap();
            assert_eq!(relayed, Ok(true), "relayed while the other room was held");
        });
        assert_eq!(*seqs.0.lock().unwrap(), [1, 2], "the join, then the frame");
    }
}
