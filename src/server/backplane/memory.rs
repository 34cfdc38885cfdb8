//! The in-process backplane: a bus shared by the hubs of one process.
//!
//! One hub per process in production; tests wire several hubs to one bus to
//! stand for several server instances.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use super::{Backplane, BackplaneError};
use crate::{
    protocol::{ClientEvent, ClientFrame, RelayedFrame, RoomName},
    server::hub::{LocalRoom, Outbound},
};

/// Rooms and their subscribed nodes, shared by every [`MemoryBackplane`]
/// made from it.
#[derive(Clone, Default)]
pub struct MemoryBus {
    // Held only for map updates and for handing a frame to each subscribed
    // room's queues, which never blocks: no `.await` while it is held.
    rooms: Arc<Mutex<HashMap<RoomName, BusRoom>>>,
    next_node: Arc<AtomicU64>,
}

#[derive(Default)]
struct BusRoom {
    seq: u64,
    nodes: Vec<(u64, Arc<LocalRoom>)>,
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
        let mut rooms = self.bus.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = &mut rooms.entry(room.clone()).or_default().nodes;
        nodes.retain(|(node, _)| *node != self.node);
        nodes.push((self.node, sink));
    }

    fn unsubscribe(&self, room: &RoomName) {
        let mut rooms = self.bus.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = rooms.get_mut(room) {
            entry.nodes.retain(|(node, _)| *node != self.node);
            if entry.nodes.is_empty() {
                rooms.remove(room);
            }
        }
    }

    async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
    ) -> Result<(), BackplaneError> {
        let volatile = frame.event == ClientEvent::Typing;
        let mut rooms = self.bus.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = rooms.get_mut(room) else {
            return Ok(());
        };
        entry.seq += 1;
        // Serialised once for every node and member; delivered under the
        // lock so every member sees the room's frames in `seq` order.
        let relayed = RelayedFrame {
            frame,
            from: from.to_owned(),
            seq: entry.seq,
        };
        let outbound = Outbound::new(relayed.to_json(), volatile);
        for (_, sink) in &entry.nodes {
            sink.deliver(&outbound);
        }
        Ok(())
    }
}
