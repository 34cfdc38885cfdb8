//! Counters of what the relay did, readable while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every connection of a server.
#[derive(Debug, Default)]
pub struct Stats {
    connections: AtomicU64,
    frames_received: AtomicU64,
    frames_invalid: AtomicU64,
    frames_published: AtomicU64,
    publish_failures: AtomicU64,
    deliveries: AtomicU64,
    typing_dropped: AtomicU64,
    typing_coalesced: AtomicU64,
    slow_consumers: AtomicU64,
    oversized: AtomicU64,
    rate_limited: AtomicU64,
    refused_handshakes: AtomicU64,
    abusers_closed: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Text and binary frames received from clients.
    pub frames_received: u64,
    /// Frames refused as invalid (answered with an error frame).
    pub frames_invalid: u64,
    /// Valid frames published to their room.
    pub frames_published: u64,
    /// Valid frames that could not be published (answered with an error).
    pub publish_failures: u64,
    /// Frames queued for a member.
    pub deliveries: u64,
    /// Typing pings dropped for a reader whose mailbox was full.
    pub typing_dropped: u64,
    /// Typing pings that replaced an older one of the same sender in a full
    /// mailbox.
    pub typing_coalesced: u64,
    /// Connections closed because their mailbox overflowed with actions.
    pub slow_consumers: u64,
    /// Connections closed for sending a frame over the size limit.
    pub oversized: u64,
    /// Frames over a connection's rate: typing dropped, actions refused.
    pub rate_limited: u64,
    /// Handshakes refused: origin, token, address limits.
    pub refused_handshakes: u64,
    /// Connections closed for sustained flooding or invalid frames.
    pub abusers_closed: u64,
}

macro_rules! counters {
    ($($field:ident => $inc:ident),* $(,)?) => {
        impl Stats {
            $(
                #[doc = concat!("Counts one more `", stringify!($field), "`.")]
                pub fn $inc(&self) {
                    self.$field.fetch_add(1, Ordering::Relaxed);
                }
            )*

            /// The counters now.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($field: self.$field.load(Ordering::Relaxed)),* }
            }
        }
    };
}

counters! {
    connections => connection,
    frames_received => frame_received,
    frames_invalid => frame_invalid,
    frames_published => frame_published,
    publish_failures => publish_failure,
    deliveries => delivery,
    typing_dropped => typing_dropped,
    typing_coalesced => typing_coalesced,
    slow_consumers => slow_consumer,
    oversized => oversized,
    rate_limited => rate_limited,
    refused_handshakes => refused_handshake,
    abusers_closed => abuser_closed,
}
