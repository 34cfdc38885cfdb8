//! What the relay did, as Prometheus metrics (served at `/metrics`), with a
//! plain snapshot for tests. What every frame counts (its kind, its
//! delivery, its fan-out latency) takes no lock.

mod latency;

use std::{fmt::Write as _, time::Duration};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use self::latency::LatencyHistogram;
use crate::protocol::Close;

/// Label values in Prometheus' lowercase style.
macro_rules! label_values {
    ($name:ident { $($variant:ident => $value:literal),* $(,)? }) => {
        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
                encoder.write_str(match self { $(Self::$variant => $value),* })
            }
        }
    };
}

/// Registers each metric of `$stats` under its name and help text.
macro_rules! register_all {
    ($registry:ident, $stats:ident, $($name:literal, $help:literal => $field:ident;)*) => {
        $($registry.register($name, $help, $stats.$field.clone());)*
    };
}

/// What kind of frame.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Kind {
    /// A typing ping.
    Typing,
    /// An action.
    Action,
    /// An `away` or `name` frame.
    Presence,
    /// A frame that was refused as invalid.
    Invalid,
}

label_values!(Kind { Typing => "typing", Action => "action", Presence => "presence", Invalid => "invalid" });

impl Kind {
    const ALL: [Self; 4] = [Self::Typing, Self::Action, Self::Presence, Self::Invalid];
}

/// One counter per kind of frame, looked up once.
#[derive(Debug)]
struct ByKind([Counter; 4]);

impl ByKind {
    /// The counters of `family`, one per kind, created now.
    fn of(family: &Family<KindLabel, Counter>) -> Self {
        Self(Kind::ALL.map(|kind| family.get_or_create_owned(&KindLabel { kind })))
    }

    fn inc(&self, kind: Kind) {
        self.0[kind as usize].inc();
    }
}

/// Why a frame was not relayed or not delivered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DropReason {
    /// Refused as invalid (answered with an error frame).
    Invalid,
    /// Over the connection's rate (typing dropped, action refused).
    RateLimited,
    /// A reader's mailbox was full: a typing ping or a spectator's presence
    /// gave way.
    QueueFull,
    /// A reader's mailbox was full: a newer typing ping replaced an older one.
    Coalesced,
    /// A reader's mailbox was full of actions: the reader was closed.
    SlowConsumer,
    /// The backplane could not take it.
    BackplaneDown,
}

label_values!(DropReason {
    Invalid => "invalid",
    RateLimited => "rate_limited",
    QueueFull => "queue_full",
    Coalesced => "coalesced",
    SlowConsumer => "slow_consumer",
    BackplaneDown => "backplane_down",
});

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// Bad room, role or player key.
    BadRequest,
    /// Foreign or missing Origin.
    Origin,
    /// Missing or bad join token.
    Token,
    /// Too many sockets from one address, or too fast.
    Address,
    /// Too many tabs of one player (with a join token).
    Player,
    /// The process's budget of sockets, or of new sockets a second.
    Budget,
}

label_values!(HandshakeRefusal {
    BadRequest => "bad_request",
    Origin => "origin",
    Token => "token",
    Address => "address",
    Player => "player",
    Budget => "budget",
});

/// How a connection that presented `since` fared.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Recovery {
    /// It got every event after `since`.
    Recovered,
    /// The history did not reach back that far: it got the snapshot.
    NotRecovered,
    /// `since` was not a sequence number of the room.
    Invalid,
}

label_values!(Recovery {
    Recovered => "recovered",
    NotRecovered => "not_recovered",
    Invalid => "invalid",
});

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecoveryLabel {
    outcome: Recovery,
}

/// A close, labelled as the table of close codes says.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct CloseMetric(Close);

impl EncodeLabelValue for CloseMetric {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.0.metric())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: Kind,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabel {
    reason: DropReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    reason: HandshakeRefusal,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabel {
    reason: CloseMetric,
}

/// The server's metrics, shared by every connection.
#[derive(Debug)]
pub struct Stats {
    registry: Registry,
    connections: Counter,
    open: Gauge,
    rooms: Gauge,
    received: Family<KindLabel, Counter>,
    received_by_kind: ByKind,
    published: Family<KindLabel, Counter>,
    published_by_kind: ByKind,
    delivered: Counter,
    dropped: Family<DropLabel, Counter>,
    refused: Family<RefusalLabel, Counter>,
    closed: Family<CloseLabel, Counter>,
    fanout: LatencyHistogram,
    publish_errors: Counter,
    backplane_reconnects: Counter,
    backplane_up: Gauge,
    recoveries: Family<RecoveryLabel, Counter>,
    workers: Gauge,
}

/// A copy of some counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Frames refused as invalid.
    pub frames_invalid: u64,
    /// Frames over a connection's rate.
    pub rate_limited: u64,
    /// Typing pings and spectators' presence that gave way in a full
    /// mailbox.
    pub gave_way: u64,
    /// Connections closed because their mailbox overflowed.
    pub slow_consumers: u64,
    /// Connections closed for a frame over the size limit.
    pub oversized: u64,
    /// Handshakes refused, for any reason.
    pub refused_handshakes: u64,
    /// Connections closed for flooding or too many invalid frames.
    pub abusers_closed: u64,
}

impl Default for Stats {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("battle");
        let (received, published) = (Family::default(), Family::default());
        let stats = Self {
            connections: Counter::default(),
            open: Gauge::default(),
            rooms: Gauge::default(),
            received_by_kind: ByKind::of(&received),
            received,
            published_by_kind: ByKind::of(&published),
            published,
            delivered: Counter::default(),
            dropped: Family::default(),
            refused: Family::default(),
            closed: Family::default(),
            fanout: LatencyHistogram::default(),
            publish_errors: Counter::default(),
            backplane_reconnects: Counter::default(),
            backplane_up: Gauge::default(),
            recoveries: Family::default(),
            workers: Gauge::default(),
            registry: Registry::default(),
        };
        register_all!(registry, stats,
            "connections", "WebSocket connections accepted" => connections;
            "connections_open", "WebSocket connections open now" => open;
            "rooms", "Rooms with connections on this instance" => rooms;
            "frames_received", "Frames received from clients, by kind" => received;
            "frames_published", "Frames published to their room, by kind" => published;
            "frames_delivered", "Frames queued for a connection" => delivered;
            "frames_dropped", "Frames not relayed or not delivered, by reason" => dropped;
            "handshakes_refused", "WebSocket handshakes refused, by reason" => refused;
            "connections_closed", "Connections closed by the server, by reason" => closed;
            "fanout_latency_seconds", "Time from a frame's publication to its write on a member's socket" => fanout;
            "backplane_publish_errors", "Frames the backplane could not publish to other instances" => publish_errors;
            "backplane_reconnects", "Times the link to the message broker came back after it was lost" => backplane_reconnects;
            "backplane_up", "1 while the link to the message broker is up (always 1 in process)" => backplane_up;
            "recoveries", "Connections that presented the last seq they saw, by outcome" => recoveries;
            "worker_threads", "Worker threads of the server's runtime: TOKIO_WORKER_THREADS, or one per CPU the process may use" => workers;
        );
        Self { registry, ..stats }
    }
}

impl Stats {
    /// A connection opened.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.open.inc();
    }

    /// A connection ended.
    pub fn connection_ended(&self) {
        self.open.dec();
    }

    /// The number of rooms with connections on this instance changed.
    pub fn set_rooms(&self, rooms: usize) {
        self.rooms.set(i64::try_from(rooms).unwrap_or(i64::MAX));
    }

    /// A frame of `kind` arrived from a client.
    pub fn received(&self, kind: Kind) {
        self.received_by_kind.inc(kind);
    }

    /// A frame of `kind` was published to its room.
    pub fn published(&self, kind: Kind) {
        self.published_by_kind.inc(kind);
    }

    /// A frame was queued for a connection.
    pub fn delivered(&self) {
        self.delivered.inc();
    }

    /// A frame was not relayed or not delivered.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped.get_or_create(&DropLabel { reason }).inc();
        if reason == DropReason::BackplaneDown {
            self.publish_errors.inc();
        }
    }

    /// A frame reached this instance's members but not the other instances:
    /// the message broker was down.
    pub fn unpublished(&self) {
        self.publish_errors.inc();
    }

    /// The link to the message broker came back.
    pub fn backplane_reconnected(&self) {
        self.backplane_reconnects.inc();
    }

    /// The link to the message broker went up or down.
    pub fn set_backplane_up(&self, up: bool) {
        self.backplane_up.set(i64::from(up));
    }

    /// The server's runtime has `workers` worker threads.
    pub fn set_workers(&self, workers: usize) {
        self.workers.set(i64::try_from(workers).unwrap_or(i64::MAX));
    }

    /// A handshake was refused.
    pub fn refused(&self, reason: HandshakeRefusal) {
        self.refused.get_or_create(&RefusalLabel { reason }).inc();
    }

    /// A connection presented `since`, with this outcome.
    pub fn recovery(&self, outcome: Recovery) {
        self.recoveries
            .get_or_create(&RecoveryLabel { outcome })
            .inc();
    }

    /// The server closed a connection.
    pub fn closed(&self, close: Close) {
        let reason = CloseMetric(close);
        self.closed.get_or_create(&CloseLabel { reason }).inc();
    }

    /// A frame reached a member's socket `latency` after its publication.
    pub fn fanout(&self, latency: Duration) {
        self.fanout.observe(latency);
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// Some counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let dropped = |reason| self.dropped.get_or_create(&DropLabel { reason }).get();
        let closed = |close| {
            let reason = CloseMetric(close);
            self.closed.get_or_create(&CloseLabel { reason }).get()
        };
        let refused: u64 = [
            HandshakeRefusal::BadRequest,
            HandshakeRefusal::Origin,
            HandshakeRefusal::Token,
            HandshakeRefusal::Address,
            HandshakeRefusal::Player,
            HandshakeRefusal::Budget,
        ]
        .into_iter()
        .map(|reason| self.refused.get_or_create(&RefusalLabel { reason }).get())
        .sum();
        StatsSnapshot {
            connections: self.connections.get(),
            frames_invalid: dropped(DropReason::Invalid),
            rate_limited: dropped(DropReason::RateLimited),
            gave_way: dropped(DropReason::QueueFull),
            slow_consumers: dropped(DropReason::SlowConsumer),
            oversized: closed(Close::Oversized),
            refused_handshakes: refused,
            abusers_closed: closed(Close::TooManyInvalid) + closed(Close::RateLimited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_served_in_the_prometheus_text_format() {
        let stats = Stats::default();
        stats.connection_opened();
        stats.received(Kind::Typing);
        stats.dropped(DropReason::BackplaneDown);
        stats.fanout(Duration::from_micros(120));
        let text = stats.encode();
        for line in [
            "battle_connections_total 1",
            "battle_connections_open 1",
            "battle_frames_received_total{kind=\"typing\"} 1",
            "battle_frames_dropped_total{reason=\"backplane_down\"} 1",
            "battle_backplane_publish_errors_total 1",
            "battle_fanout_latency_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
