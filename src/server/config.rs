//! The server's configuration: one struct, from flags and environment.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

use super::roster::Limits;

/// Live opponent status for coding battles: serves the lobby, the battle
/// page and the room relay at /ws/battle/<room>/.
#[derive(Debug, Clone, Parser)]
#[command(name = "battle-status", version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen address is logged).
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Frames queued for one connection before typing pings are dropped and
    /// a connection that also misses an action is closed as too slow.
    #[arg(long, env = "BATTLE_QUEUE_CAPACITY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub queue_capacity: u16,

    /// Most spectators in one battle.
    #[arg(long, env = "BATTLE_MAX_SPECTATORS", default_value_t = 16)]
    pub max_spectators: usize,

    /// How long a player who dropped without leaving keeps their seat, in
    /// milliseconds ("reconnecting" to the others meanwhile).
    #[arg(long, env = "BATTLE_GRACE_MS", default_value_t = 10_000)]
    pub grace_ms: u64,

    /// How often the server pings every connection, in milliseconds.
    #[arg(long, env = "BATTLE_HEARTBEAT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub heartbeat_ms: u64,

    /// How long past a heartbeat a silent connection is counted as dropped,
    /// in milliseconds.
    #[arg(long, env = "BATTLE_HEARTBEAT_TIMEOUT_MS", default_value_t = 10_000)]
    pub heartbeat_timeout_ms: u64,

    /// On shutdown, how long open sockets get to close, in milliseconds.
    #[arg(long, env = "BATTLE_SHUTDOWN_TIMEOUT_MS", default_value_t = 5_000)]
    pub shutdown_timeout_ms: u64,
}

impl Config {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self::parse_from(["battle-status", "--addr", &addr.to_string()])
    }

    /// The room rules.
    pub fn limits(&self) -> Limits {
        Limits {
            max_spectators: self.max_spectators,
            grace_ms: self.grace_ms,
        }
    }

    /// The heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// How long a connection may stay silent before it counts as dropped.
    pub fn silence_limit(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms + self.heartbeat_timeout_ms)
    }
}
