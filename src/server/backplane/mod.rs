//! The backplane: how a node's rooms reach the same rooms on other nodes.
//!
//! A node subscribes to a room when the room gets its first local member and
//! unsubscribes with the last one. Every frame published in a room comes back
//! through the backplane to every subscribed node, the publishing node
//! included, so local and remote delivery are one code path. The backplane
//! stamps each frame with the room's sequence number.
//!
//! Implementations are chosen at start-up through [`AnyBackplane`], which
//! delegates (traits returning `impl Future` are not object safe).

mod memory;

use std::{future::Future, sync::Arc};

use thiserror::Error;

pub use memory::{MemoryBackplane, MemoryBus};

use super::hub::LocalRoom;
use crate::protocol::{ClientFrame, RoomName};

/// Why a frame could not be published.
#[derive(Debug, Error)]
pub enum BackplaneError {
    /// The broker cannot be reached right now; the frame was not relayed.
    #[error("the message broker is unavailable")]
    Unavailable,
}

/// Carries room frames between the nodes that serve a room.
pub trait Backplane: Send + Sync + 'static {
    /// Starts delivering the frames of `room` to `sink`. Called under the
    /// hub's lock, so it must not block: brokers that need I/O queue it.
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>);

    /// Stops delivering the frames of `room` to this node. Same rules as
    /// [`subscribe`](Backplane::subscribe).
    fn unsubscribe(&self, room: &RoomName);

    /// Publishes `frame`, sent by member `from`, to every node serving
    /// `room`. Frames from one caller are delivered in the order published.
    fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
    ) -> impl Future<Output = Result<(), BackplaneError>> + Send;
}

/// The backplane chosen in the configuration.
#[derive(Debug)]
pub enum AnyBackplane {
    /// In-process: rooms are shared only by hubs of this process.
    Memory(MemoryBackplane),
}

impl Backplane for AnyBackplane {
    fn subscribe(&self, room: &RoomName, sink: Arc<LocalRoom>) {
        match self {
            Self::Memory(backplane) => backplane.subscribe(room, sink),
        }
    }

    fn unsubscribe(&self, room: &RoomName) {
        match self {
            Self::Memory(backplane) => backplane.unsubscribe(room),
        }
    }

    async fn publish(
        &self,
        room: &RoomName,
        from: &str,
        frame: ClientFrame,
    ) -> Result<(), BackplaneError> {
        match self {
            Self::Memory(backplane) => backplane.publish(room, from, frame).await,
        }
    }
}
