//! The server's configuration: one struct, from flags and environment.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use clap::{Args, Parser};
use ipnet::IpNet;

use super::{
    backplane::{RedisSource, RedisTimeouts},
    guard::{AdmissionLimits, OriginPolicy, RateLimits, SocketLimits, TrustedProxies},
    room::{Limits, HISTORY_LEN},
    security::PagePolicy,
    token::Secret,
};
use crate::protocol::{PlayerKey, PlayerName, Role, RoomName};

/// Live opponent status for coding battles: serves the lobby, the battle
/// page and the room relay at /ws/battle/<room>/.
#[derive(Debug, Clone, Parser)]
#[command(name = "battle-status", version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen address is logged).
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Frames queued for one connection. When full, typing pings and
    /// spectators' presence give way; a connection whose queue is full of
    /// frames that must arrive (actions, players' presence) is closed as
    /// too slow.
    #[arg(long, env = "BATTLE_QUEUE_CAPACITY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub queue_capacity: u16,

    /// Most spectators in one battle.
    #[arg(long, env = "BATTLE_MAX_SPECTATORS", default_value_t = 16)]
    pub max_spectators: usize,

    /// How long a player who dropped without leaving keeps their seat, in
    /// milliseconds ("reconnecting" to the others meanwhile).
    #[arg(long, env = "BATTLE_GRACE_MS", default_value_t = 10_000)]
    pub grace_ms: u64,

    /// The longest a connection goes without a frame from the server, in
    /// milliseconds: one sent nothing else for this long gets a heartbeat
    /// frame, and one the server heard nothing from lately a ping.
    #[arg(long, env = "BATTLE_HEARTBEAT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub heartbeat_ms: u64,

    /// How long past a heartbeat a silent connection (not even a pong) is
    /// closed as idle and counted as dropped, in milliseconds.
    #[arg(long, env = "BATTLE_HEARTBEAT_TIMEOUT_MS", default_value_t = 10_000)]
    pub heartbeat_timeout_ms: u64,

    /// How long a client may take to send its HTTP request headers (the
    /// WebSocket handshake included), in milliseconds.
    #[arg(long, env = "BATTLE_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_ms: u64,

    /// On shutdown, how long open sockets get to close, in milliseconds.
    #[arg(long, env = "BATTLE_SHUTDOWN_TIMEOUT_MS", default_value_t = 5_000)]
    pub shutdown_timeout_ms: u64,

    /// Browser origins allowed to open sockets, comma-separated
    /// (`https://host[:port]`). Default: pages of this server's own host.
    #[arg(long, env = "BATTLE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Let clients that send no Origin header (not browsers) connect.
    #[arg(long, env = "BATTLE_ALLOW_MISSING_ORIGIN")]
    pub allow_missing_origin: bool,

    /// Secret for signed join tokens (at least 16 bytes). When set, every
    /// socket needs a valid token. Also read by `battle-status token`.
    #[arg(long, env = "BATTLE_TOKEN_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub token_secret: Option<Secret>,

    /// Bearer secret of the judge's publish API (POST
    /// /api/battles/<room>/events, at least 16 bytes); the API is off
    /// without it.
    #[arg(long, env = "BATTLE_PUBLISH_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub publish_secret: Option<Secret>,

    /// Comma-separated addresses or ranges (`10.0.0.0/8`) of the proxies in
    /// front of the server: from them, the client's address for the
    /// per-address limits is read from `X-Forwarded-For`.
    #[arg(long, env = "BATTLE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,

    /// Redis server through which instances share rooms, e.g.
    /// `redis://127.0.0.1:6379/`. Without it, rooms live in this process.
    #[arg(long, env = "BATTLE_REDIS_URL", hide_env_values = true, value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// Redis Sentinels (`host:port`, comma-separated) that name the Redis
    /// master, instead of `--redis-url`: instances follow a failover to the
    /// new master by themselves.
    #[arg(
        long,
        env = "BATTLE_REDIS_SENTINEL",
        value_delimiter = ',',
        conflicts_with = "redis_url"
    )]
    pub redis_sentinel: Vec<String>,

    /// With `--redis-sentinel`: the master's name in the Sentinels'
    /// configuration.
    #[arg(long, env = "BATTLE_REDIS_MASTER_NAME", default_value = "mymaster")]
    pub redis_master_name: String,

    /// With Redis: how long an instance that stopped saying it is alive
    /// (it crashed) keeps its players' seats before they count as dropped
    /// and enter the grace period, in ms.
    #[arg(long, env = "BATTLE_INSTANCE_TTL_MS", default_value_t = 30_000)]
    pub instance_ttl_ms: u64,

    /// Origins that may show the pages in a frame, comma-separated
    /// (`https://host.example`), for a host application that embeds the
    /// battle page. Default: none (the pages refuse to be framed).
    #[arg(long, env = "BATTLE_FRAME_ANCESTORS", value_delimiter = ',', value_parser = parse_frame_ancestor)]
    pub frame_ancestors: Vec<String>,

    /// The address players use (`https://battles.example`), when a TLS proxy
    /// is in front: with `https://`, responses carry Strict-Transport-Security.
    #[arg(long, env = "BATTLE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Address of the operators' port (`127.0.0.1:9100`): when set,
    /// `/metrics` and the reason of a degraded `/readyz` are served there
    /// only, not on the public port. Default: on the main port.
    #[arg(long, env = "BATTLE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Events (actions, verdicts, players' presence) each room keeps, for late
    /// joiners and for pages that reconnect with `since`.
    #[arg(long, env = "BATTLE_HISTORY_LEN", default_value_t = HISTORY_LEN)]
    pub history_len: usize,

    /// On shutdown, sockets are told to come back after a random delay up
    /// to this many milliseconds (in the close reason), so that a restart
    /// under thousands of players does not bring them all back at once.
    #[arg(long, env = "BATTLE_RECONNECT_WINDOW_MS", default_value_t = 10_000)]
    pub reconnect_window_ms: u64,

    /// With Redis: longest wait for any one Redis call (a command, a
    /// script, a subscription), in ms. Past it the call fails, its frame is
    /// delivered to this instance's members at once, and the link to Redis
    /// counts as down until it answers again.
    #[arg(long, env = "BATTLE_REDIS_TIMEOUT_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_timeout_ms: u64,

    /// With Redis: longest silence of the pub/sub connection (pinged every
    /// second) before the link counts as down, in ms.
    #[arg(long, env = "BATTLE_REDIS_LIVENESS_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_liveness_ms: u64,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "BATTLE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub rates: RateArgs,
}

/// Rate limits, per connection and per client address.
#[derive(Debug, Clone, Args)]
pub struct RateArgs {
    /// Typing pings per second a connection may send (more are dropped).
    #[arg(long, env = "BATTLE_TYPING_PER_SEC", default_value = "4")]
    pub typing_per_sec: NonZeroU32,
    /// Typing pings a connection may send in a burst.
    #[arg(long, env = "BATTLE_TYPING_BURST", default_value = "8")]
    pub typing_burst: NonZeroU32,
    /// Actions per second a connection may send (more are refused).
    #[arg(long, env = "BATTLE_ACTIONS_PER_SEC", default_value = "2")]
    pub actions_per_sec: NonZeroU32,
    /// Actions a connection may send in a burst.
    #[arg(long, env = "BATTLE_ACTIONS_BURST", default_value = "10")]
    pub actions_burst: NonZeroU32,
    /// Invalid frames a connection may send in a burst (one more every
    /// 10 s) before it is closed with 4508.
    #[arg(long, env = "BATTLE_INVALID_BURST", default_value = "10")]
    pub invalid_burst: NonZeroU32,
    /// Frames over the typing or action rate a connection may send in a
    /// burst (two more a second) before it is closed with 4509.
    #[arg(long, env = "BATTLE_EXCESS_BURST", default_value = "30")]
    pub excess_burst: NonZeroU32,
    /// Open sockets one client address may have at once (sockets with a
    /// valid join token do not count: they are limited per player).
    #[arg(long, env = "BATTLE_MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub max_connections_per_ip: usize,
    /// New sockets per second one client address may open.
    #[arg(long, env = "BATTLE_CONNECTIONS_PER_IP_PER_SEC", default_value = "50")]
    pub connections_per_ip_per_sec: NonZeroU32,
    /// New sockets one client address may open in a burst.
    #[arg(long, env = "BATTLE_CONNECTIONS_PER_IP_BURST", default_value = "200")]
    pub connections_per_ip_burst: NonZeroU32,
    /// Open sockets (tabs) of one player with a valid join token.
    #[arg(long, env = "BATTLE_MAX_CONNECTIONS_PER_PLAYER", default_value_t = 4)]
    pub max_connections_per_player: usize,
    /// Open sockets of the whole process.
    #[arg(long, env = "BATTLE_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,
    /// New sockets per second the whole process accepts.
    #[arg(long, env = "BATTLE_CONNECTIONS_PER_SEC", default_value = "1000")]
    pub connections_per_sec: NonZeroU32,
    /// New sockets the whole process accepts in a burst.
    #[arg(long, env = "BATTLE_CONNECTIONS_BURST", default_value = "2000")]
    pub connections_burst: NonZeroU32,
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    Secret::new(text).map_err(|error| error.to_string())
}

fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or an address range"))
}

fn parse_frame_ancestor(text: &str) -> Result<String, String> {
    let text = text.trim();
    let scheme = text.starts_with("https://") || text.starts_with("http://");
    let safe = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.:/*'".contains(c));
    if (scheme || text == "'self'") && safe {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an origin (https://host[:port]) or 'self'"
        ))
    }
}

fn parse_public_url(text: &str) -> Result<String, String> {
    if text.starts_with("https://") || text.starts_with("http://") {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!("{text:?} is not an http:// or https:// address"))
    }
}

fn parse_redis_url(text: &str) -> Result<String, String> {
    redis::Client::open(text)
        .map(|_| text.to_owned())
        .map_err(|error| error.to_string())
}

impl Config {
    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self::parse_from(["battle-status", "--addr", &addr.to_string()])
    }

    /// How the pages protect themselves; `live_reload_port` in a
    /// `cargo leptos watch` build.
    pub fn page_policy(&self, live_reload_port: Option<u32>) -> PagePolicy {
        PagePolicy {
            frame_ancestors: self.frame_ancestors.clone(),
            tls: self
                .public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://")),
            live_reload_port,
        }
    }

    /// Where the Redis server is, if rooms are shared through one.
    pub fn redis_source(&self) -> Option<RedisSource> {
        match (&self.redis_url, self.redis_sentinel.is_empty()) {
            (Some(url), _) => Some(RedisSource::Url(url.clone())),
            (None, false) => Some(RedisSource::Sentinel {
                sentinels: self.redis_sentinel.clone(),
                master: self.redis_master_name.clone(),
            }),
            (None, true) => None,
        }
    }

    /// The deadlines of the link to Redis.
    pub fn redis_timeouts(&self) -> RedisTimeouts {
        RedisTimeouts {
            command: Duration::from_millis(self.redis_timeout_ms),
            liveness: Duration::from_millis(self.redis_liveness_ms),
        }
    }

    /// The room rules.
    pub fn limits(&self) -> Limits {
        Limits {
            max_spectators: self.max_spectators,
            grace_ms: self.grace_ms,
            history_len: self.history_len,
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

    /// Which pages may open sockets.
    pub fn origin_policy(&self) -> OriginPolicy {
        OriginPolicy {
            allowed: self.allowed_origins.clone(),
            allow_missing: self.allow_missing_origin,
        }
    }

    /// Each connection's rates.
    pub fn rate_limits(&self) -> RateLimits {
        let r = &self.rates;
        RateLimits {
            typing_per_sec: r.typing_per_sec,
            typing_burst: r.typing_burst,
            actions_per_sec: r.actions_per_sec,
            actions_burst: r.actions_burst,
            invalid_burst: r.invalid_burst,
            excess_burst: r.excess_burst,
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.clone())
    }

    /// Who may open a socket: the process's, each address's and each
    /// player's limits.
    pub fn admission_limits(&self) -> AdmissionLimits {
        let r = &self.rates;
        AdmissionLimits {
            budget: SocketLimits {
                max_open: r.max_connections,
                per_sec: r.connections_per_sec,
                burst: r.connections_burst,
            },
            address: SocketLimits {
                max_open: r.max_connections_per_ip,
                per_sec: r.connections_per_ip_per_sec,
                burst: r.connections_per_ip_burst,
            },
            max_open_per_player: r.max_connections_per_player,
        }
    }
}

/// `battle-status token`: mints a join token.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The battle the token opens.
    #[arg(long, value_parser = |s: &str| RoomName::parse(s).map_err(|e| e.to_string()))]
    pub room: RoomName,
    /// The player's private id (16 to 64 of [A-Za-z0-9_-]); the same id
    /// takes the same seat back.
    #[arg(long, value_parser = |s: &str| PlayerKey::parse(s).ok_or("16 to 64 characters of letters, digits, '-' and '_'"))]
    pub player: PlayerKey,
    /// `player` or `spectator`.
    #[arg(long, default_value = "player", value_parser = |s: &str| Role::parse(s).ok_or("player or spectator"))]
    pub role: Role,
    /// The player's display name (1 to 32 characters): the page shows it
    /// and cannot change it.
    #[arg(long, value_parser = |s: &str| PlayerName::parse(s).map_err(|e| e.to_string()))]
    pub name: Option<PlayerName>,
    /// How long the token works, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    /// The secret shared with the server.
    #[arg(long, env = "BATTLE_TOKEN_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub token_secret: Secret,
}
