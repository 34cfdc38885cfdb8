//! Room membership on one node, and fan-out to the members' queues.
//!
//! A connection [`join`](Hub::join)s a room and gets a bounded queue of
//! outgoing frames plus a guard that leaves the room when dropped, whatever
//! way the connection ends. The hub subscribes its [`LocalRoom`] to the
//! backplane with the first local member and unsubscribes with the last.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::{
    backplane::{AnyBackplane, Backplane, BackplaneError},
    stats::Stats,
};
use crate::protocol::{ClientFrame, RoomName};

/// A serialised frame on its way to members.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The frame's JSON text, shared by every member's queue.
    pub text: Utf8Bytes,
    /// Typing pings are volatile: a full queue drops them, not the member.
    pub volatile: bool,
}

impl Outbound {
    /// Wraps a serialised frame.
    pub fn new(text: String, volatile: bool) -> Self {
        Self {
            text: text.into(),
            volatile,
        }
    }
}

/// The members of one room on this node.
#[derive(Debug)]
pub struct LocalRoom {
    // A leaf lock: nothing else is locked, and nothing awaited, while held.
    members: Mutex<HashMap<String, mpsc::Sender<Outbound>>>,
    stats: Arc<Stats>,
}

impl LocalRoom {
    /// Queues `frame` for every member of the room. Never blocks: a member
    /// whose queue is full loses a typing ping, or is removed (and so
    /// disconnected as a slow consumer) when the frame is an action.
    pub fn deliver(&self, frame: &Outbound) {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|_, queue| match queue.try_send(frame.clone()) {
            Ok(()) => {
                self.stats.delivery();
                true
            }
            Err(TrySendError::Full(_)) if frame.volatile => {
                self.stats.typing_dropped();
                true
            }
            Err(TrySendError::Full(_)) => {
                self.stats.slow_consumer();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        });
    }

    fn is_empty(&self) -> bool {
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// The rooms of one node.
#[derive(Debug)]
pub struct Hub {
    // Held only to look up, add or remove rooms and members, and to tell the
    // backplane about it (which never blocks): no `.await` while held.
    rooms: Mutex<HashMap<RoomName, Arc<LocalRoom>>>,
    backplane: AnyBackplane,
    stats: Arc<Stats>,
    queue_capacity: usize,
}

/// A connection's place in a room. Dropping it leaves the room.
#[derive(Debug)]
pub struct Membership {
    /// Frames to send to this member, in order. Ends (`None`) if the hub
    /// removed the member as a slow consumer.
    pub outbound: mpsc::Receiver<Outbound>,
    hub: Arc<Hub>,
    room: RoomName,
    member: String,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.room, &self.member);
    }
}

impl Hub {
    /// A hub whose rooms meet other nodes' through `backplane`; each member
    /// gets a queue of `queue_capacity` frames.
    pub fn new(backplane: AnyBackplane, stats: Arc<Stats>, queue_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            rooms: Mutex::default(),
            backplane,
            stats,
            queue_capacity: queue_capacity.max(1),
        })
    }

    /// Adds `member` to `room`.
    pub fn join(self: &Arc<Self>, room: &RoomName, member: &str) -> Membership {
        let (queue, outbound) = mpsc::channel(self.queue_capacity);
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let local = rooms.entry(room.clone()).or_insert_with(|| {
            let local = Arc::new(LocalRoom {
                members: Mutex::default(),
                stats: self.stats.clone(),
            });
            self.backplane.subscribe(room, local.clone());
            local
        });
        local
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(member.to_owned(), queue);
        Membership {
            outbound,
            hub: self.clone(),
            room: room.clone(),
            member: member.to_owned(),
        }
    }

    /// Relays `frame` from `member` to everyone in `room`, on every node.
    pub async fn publish(
        &self,
        room: &RoomName,
        member: &str,
        frame: ClientFrame,
    ) -> Result<(), BackplaneError> {
        self.backplane.publish(room, member, frame).await
    }

    /// The number of rooms with members on this node.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn leave(&self, room: &RoomName, member: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let Some(local) = rooms.get(room) else {
            return;
        };
        local
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(member);
        if local.is_empty() {
            rooms.remove(room);
            self.backplane.unsubscribe(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{Action, ClientEvent},
        server::backplane::MemoryBus,
    };

    fn hub_on(bus: &MemoryBus, capacity: usize) -> Arc<Hub> {
        Hub::new(
            AnyBackplane::Memory(bus.node()),
            Arc::new(Stats::default()),
            capacity,
        )
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn action(action: Action) -> ClientFrame {
        ClientFrame::new(ClientEvent::Action(action))
    }

    #[tokio::test]
    async fn hubs_on_one_bus_share_a_room_like_two_server_instances() {
        let bus = MemoryBus::new();
        let (a, b) = (hub_on(&bus, 8), hub_on(&bus, 8));
        let mut on_a = a.join(&room("r"), "alice");
        let mut on_b = b.join(&room("r"), "bob");
        let _elsewhere = b.join(&room("other"), "carol");

        a.publish(&room("r"), "alice", action(Action::Running))
            .await
            .unwrap();

        for membership in [&mut on_a, &mut on_b] {
            let got = membership.outbound.try_recv().unwrap();
            assert_eq!(
                got.text.as_str(),
                r#"{"type":"action","action":"RUNNING","from":"alice","seq":1}"#
            );
        }
    }

    #[tokio::test]
    async fn the_last_member_leaving_forgets_the_room_and_its_sequence() {
        let bus = MemoryBus::new();
        let hub = hub_on(&bus, 8);
        let first = hub.join(&room("r"), "alice");
        hub.publish(&room("r"), "alice", action(Action::Accepted))
            .await
            .unwrap();
        assert_eq!(hub.room_count(), 1);
        drop(first);
        assert_eq!(hub.room_count(), 0);

        let mut again = hub.join(&room("r"), "bob");
        hub.publish(&room("r"), "bob", action(Action::Accepted))
            .await
            .unwrap();
        assert!(again
            .outbound
            .try_recv()
            .unwrap()
            .text
            .as_str()
            .contains(r#""seq":1"#));
    }

    #[tokio::test]
    async fn a_full_queue_drops_typing_but_disconnects_on_an_action() {
        let bus = MemoryBus::new();
        let hub = hub_on(&bus, 1);
        let mut slow = hub.join(&room("r"), "slow");
        let typing = ClientFrame::new(ClientEvent::Typing);
        for _ in 0..3 {
            hub.publish(&room("r"), "x", typing.clone()).await.unwrap();
        }
        assert_eq!(hub.stats.snapshot().typing_dropped, 2);
        assert!(slow.outbound.try_recv().is_ok());
        hub.publish(&room("r"), "x", typing.clone()).await.unwrap();
        hub.publish(&room("r"), "x", action(Action::Submitted))
            .await
            .unwrap();
        assert_eq!(hub.stats.snapshot().slow_consumers, 1);
        assert!(slow.outbound.recv().await.unwrap().volatile);
        assert!(slow.outbound.recv().await.is_none(), "the queue ends");
    }
}
