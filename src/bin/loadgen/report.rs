//! What the generator reports: each process's outcome (with its HDR
//! histograms, so that processes can be merged) and the summary of all.

use base64::{engine::general_purpose::STANDARD, Engine};
use hdrhistogram::{
    serialization::{Deserializer, Serializer, V2Serializer},
    Histogram,
};
use serde::{Deserialize, Serialize};

use super::{Args, LATE};

/// What one process measured.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub connected: u64,
    pub failed: u64,
    /// Handshakes refused with 429 (tried again with `--retry`).
    #[serde(default)]
    pub busy: u64,
    pub typing_sent: u64,
    pub actions_sent: u64,
    pub typing_expected: u64,
    pub actions_expected: u64,
    pub typing_received: u64,
    pub actions_received: u64,
    pub late_sends: u64,
    pub seconds: f64,
    /// Base64 V2 HDR histograms, microseconds.
    pub latency: String,
    /// The fan-out latency during `--warmup`.
    #[serde(default)]
    pub warmup_latency: String,
    pub connect: String,
    pub lag: String,
    pub server_rss_idle_kib: Option<u64>,
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .expect("serialising to memory");
    STANDARD.encode(bytes)
}

fn decode(text: &str) -> Histogram<u64> {
    let bytes = STANDARD.decode(text).unwrap_or_default();
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap_or_else(|_| histogram())
}

/// Whether the generator fell behind its schedule: more than 1 % of its
/// sends later than [`LATE`].
fn fell_behind(late_sends: u64, sends: u64) -> bool {
    late_sends * 100 > sends
}

/// The merged outcome of every shard, printed for people.
pub fn report(
    outcomes: &[Outcome],
    args: &Args,
    rate: f64,
    cpu: Option<f64>,
    rss_end: Option<u64>,
) -> Summary {
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let (mut latency, mut connect, mut lag) = (histogram(), histogram(), histogram());
    let mut warmup = histogram();
    for outcome in outcomes {
        let _ = latency.add(decode(&outcome.latency));
        let _ = warmup.add(decode(&outcome.warmup_latency));
        let _ = connect.add(decode(&outcome.connect));
        let _ = lag.add(decode(&outcome.lag));
    }
    let expected = sum(|o| o.typing_expected + o.actions_expected);
    let received = sum(|o| o.typing_received + o.actions_received);
    let actions_expected = sum(|o| o.actions_expected);
    let actions_received = sum(|o| o.actions_received);
    let connected = sum(|o| o.connected);
    let late_sends = sum(|o| o.late_sends);
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let rss_idle: Option<u64> = outcomes.iter().filter_map(|o| o.server_rss_idle_kib).max();
    let summary = Summary {
        connections: connected,
        failed: sum(|o| o.failed),
        busy: sum(|o| o.busy),
        rate_per_player: rate,
        expected,
        received,
        loss_percent: if expected == 0 {
            0.0
        } else {
            100.0 * (expected.saturating_sub(received)) as f64 / expected as f64
        },
        actions_lost: actions_expected.saturating_sub(actions_received),
        delivered_per_sec: received as f64 / args.duration as f64,
        p50_ms: ms(&latency, 0.5),
        p90_ms: ms(&latency, 0.9),
        p99_ms: ms(&latency, 0.99),
        p999_ms: ms(&latency, 0.999),
        max_ms: latency.max() as f64 / 1000.0,
        warmup_p99_ms: ms(&warmup, 0.99),
        warmup_p999_ms: ms(&warmup, 0.999),
        warmup_max_ms: warmup.max() as f64 / 1000.0,
        connect_p50_ms: ms(&connect, 0.5),
        connect_p99_ms: ms(&connect, 0.99),
        connect_max_ms: connect.max() as f64 / 1000.0,
        send_lag_p99_ms: ms(&lag, 0.99),
        late_sends,
        generator_behind: fell_behind(late_sends, sum(|o| o.typing_sent + o.actions_sent)),
        server_rss_idle_kib: rss_idle,
        server_rss_end_kib: rss_end,
        server_cpu_percent: cpu,
    };
    eprintln!(
        "\n{} connections ({} failed), {} rooms x {}, {:.2} frames/s per player, {} s",
        summary.connections, summary.failed, args.rooms, args.per_room, rate, args.duration
    );
    if summary.busy > 0 {
        eprintln!(
            "handshakes refused with 429: {} ({})",
            summary.busy,
            if args.retry {
                "tried again after Retry-After"
            } else {
                "not retried"
            }
        );
    }
    eprintln!(
        "deliveries: {} expected, {} received, loss {:.3} %, actions lost {}",
        expected, received, summary.loss_percent, summary.actions_lost
    );
    eprintln!("delivered: {:.0} frames/s", summary.delivered_per_sec);
    eprintln!(
        "fan-out latency ms{}: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        if args.warmup > 0 {
            ", after the warm-up"
        } else {
            ""
        },
        summary.p50_ms,
        summary.p90_ms,
        summary.p99_ms,
        summary.p999_ms,
        summary.max_ms
    );
    if args.warmup > 0 {
        eprintln!(
            "fan-out latency ms, the first {} s (warm-up): p99 {:.2}  p99.9 {:.2}  max {:.2}",
            args.warmup, summary.warmup_p99_ms, summary.warmup_p999_ms, summary.warmup_max_ms
        );
    }
    eprintln!(
        "connect ms (with retries): p50 {:.2}  p99 {:.2}  max {:.2}",
        summary.connect_p50_ms, summary.connect_p99_ms, summary.connect_max_ms
    );
    eprintln!(
        "generator: send lag p99 {:.2} ms, {} sends more than {} ms late{}",
        summary.send_lag_p99_ms,
        summary.late_sends,
        LATE.as_millis(),
        if summary.generator_behind {
            "  <- the GENERATOR fell behind: these figures are its limit, not the server's"
        } else {
            ""
        }
    );
    if let (Some(idle), true) = (rss_idle, connected > 0) {
        eprintln!("server RSS with {connected} idle connections: {idle} KiB");
    }
    if let Some(cpu) = cpu {
        eprintln!(
            "server CPU: {cpu:.0} % of one core; RSS at the end {} KiB",
            rss_end.unwrap_or(0)
        );
    }
    summary
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub connections: u64,
    pub failed: u64,
    pub busy: u64,
    pub rate_per_player: f64,
    pub expected: u64,
    pub received: u64,
    pub loss_percent: f64,
    pub actions_lost: u64,
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub warmup_p99_ms: f64,
    pub warmup_p999_ms: f64,
    pub warmup_max_ms: f64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub connect_max_ms: f64,
    pub send_lag_p99_ms: f64,
    pub late_sends: u64,
    /// More than 1 % of the sends were late: the latencies are the
    /// generator's limit, not the server's.
    pub generator_behind: bool,
    pub server_rss_idle_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    pub server_cpu_percent: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::fell_behind;

    #[test]
    fn the_generator_fell_behind_when_more_than_one_send_in_a_hundred_was_late() {
        assert!(!fell_behind(0, 0), "nothing sent, nothing late");
        assert!(!fell_behind(10, 1_000), "1 % late is still on schedule");
        assert!(fell_behind(11, 1_000));
    }
}
