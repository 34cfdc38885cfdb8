//! The rooms' members: each connects, waits for everyone, then sends (if a
//! player) frames built with the protocol's own types and receives until
//! the end, recording what it saw.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use battle_status::{
    procfs::{cpu_ticks, rss_kib},
    protocol::{Action, ClientEvent, ClientFrame},
};
use futures_util::{stream::FusedStream, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::{net::TcpSocket, sync::Barrier, task::JoinSet};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig, Message},
};

use super::{
    report::{encode, histogram, Outcome},
    Args, DRAIN, LATE,
};

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The fields of a relayed frame the generator reads.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    ts: Option<u64>,
}

#[derive(Default)]
struct Counters {
    typing_sent: AtomicU64,
    actions_sent: AtomicU64,
    typing_received: AtomicU64,
    actions_received: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    busy: AtomicU64,
    late_sends: AtomicU64,
}

/// The process's histograms, shared by its clients (one set per process:
/// a set per client would cost more memory than the server under test).
struct Histograms {
    latency: Histogram<u64>,
    /// The fan-out latency of frames sent during `--warmup`.
    warmup: Histogram<u64>,
    /// The fan-out latency since the last progress line.
    second: Histogram<u64>,
    connect: Histogram<u64>,
    lag: Histogram<u64>,
}

/// Records `value` (microseconds, at least 1) in one of the histograms.
fn record(
    histograms: &Mutex<Histograms>,
    pick: fn(&mut Histograms) -> &mut Histogram<u64>,
    value: u64,
) {
    let mut histograms = histograms.lock().unwrap_or_else(|e| e.into_inner());
    let _ = pick(&mut histograms).record(value.max(1));
}

/// Records a fan-out latency: in the warm-up's histogram or the run's, and
/// in this second's.
fn record_latency(histograms: &Mutex<Histograms>, latency: u64, warming_up: bool) {
    let mut histograms = histograms.lock().unwrap_or_else(|e| e.into_inner());
    let latency = latency.max(1);
    let _ = histograms.second.record(latency);
    let run = if warming_up {
        &mut histograms.warmup
    } else {
        &mut histograms.latency
    };
    let _ = run.record(latency);
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Ticks `per_sec` times a second on average, the first at once. Tokio's
/// timers have a millisecond's grain, so a sleep per connection would open
/// at most 1,000 a second whatever was asked; the interval makes up the
/// ticks it missed at once.
fn ramp_pace(per_sec: u64) -> tokio::time::Interval {
    let period = Duration::from_secs_f64(1.0 / per_sec.max(1) as f64);
    let mut pace = tokio::time::interval(period);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    pace
}

/// Runs the rooms `shard, shard + shards, ...` at `rate`; returns what it saw.
pub async fn run(args: &Args, shard: usize, shards: usize, rate: f64) -> Outcome {
    let rooms: Vec<usize> = (shard..args.rooms).step_by(shards).collect();
    let members = rooms.len() * usize::try_from(args.per_room).unwrap_or(usize::MAX);
    let counters = Arc::new(Counters::default());
    let connected = Arc::new(Barrier::new(members + 1));
    let go = Arc::new(Barrier::new(members + 1));
    let started = Arc::new(std::sync::OnceLock::<(Instant, u64)>::new());
    let histograms = Arc::new(Mutex::new(Histograms {
        latency: histogram(),
        warmup: histogram(),
        second: histogram(),
        connect: histogram(),
        lag: histogram(),
    }));
    let mut tasks = JoinSet::new();
    let mut pace = ramp_pace(args.ramp);
    let run_id = now_micros();
    for room in &rooms {
        for member in 0..args.per_room {
            pace.tick().await;
            let role = if member < 2 { "player" } else { "spectator" };
            let addr = args.addr[usize::try_from(member).unwrap_or(0) % args.addr.len()];
            let mut url = format!("ws://{addr}/ws/battle/lg-{run_id}-{room}/?role={role}");
            if args.names {
                url.push_str(&format!("&name=p{member}"));
            }
            tasks.spawn(client(
                addr,
                url,
                args.clone(),
                rate,
                member < 2,
                counters.clone(),
                histograms.clone(),
                connected.clone(),
                go.clone(),
                started.clone(),
            ));
        }
    }
    connected.wait().await;
    let rss_idle = rss_kib(&args.server_pid);
    if shards == 1 {
        eprintln!(
            "connected: {} ok, {} failed",
            counters.connected.load(Ordering::Relaxed),
            counters.failed.load(Ordering::Relaxed)
        );
    }
    tokio::time::sleep(Duration::from_secs(args.idle)).await;
    let begin = Instant::now();
    // One start for every client: frames stamped before it are not counted.
    let _ = started.set((begin, now_micros()));
    go.wait().await;
    let progress = tokio::spawn({
        let counters = counters.clone();
        let histograms = histograms.clone();
        let server = args.server_pid.clone();
        async move {
            let mut ticks = cpu_ticks(&server);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = cpu_ticks(&server);
                // Ticks are 1/100 s: over about a second, % of a core.
                let cpu = now.zip(ticks).map_or(String::new(), |(now, before)| {
                    format!(", server CPU {} %", now.saturating_sub(before))
                });
                ticks = now;
                // This second's tail: where in the run a tail comes from.
                let (p99, max) = {
                    let mut histograms = histograms.lock().unwrap_or_else(|e| e.into_inner());
                    let second = &mut histograms.second;
                    let figures = (second.value_at_quantile(0.99), second.max());
                    second.reset();
                    figures
                };
                eprintln!(
                    "[shard {shard}] {:>4.0}s sent {} received {}, this second's fan-out p99 {:.1} ms max {:.1} ms{cpu}",
                    begin.elapsed().as_secs_f64(),
                    counters.typing_sent.load(Ordering::Relaxed)
                        + counters.actions_sent.load(Ordering::Relaxed),
                    counters.typing_received.load(Ordering::Relaxed)
                        + counters.actions_received.load(Ordering::Relaxed),
                    p99 as f64 / 1000.0,
                    max as f64 / 1000.0,
                );
            }
        }
    });
    while tasks.join_next().await.is_some() {}
    progress.abort();
    let histograms = histograms.lock().unwrap_or_else(|e| e.into_inner());
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Outcome {
        connected: get(&counters.connected),
        failed: get(&counters.failed),
        busy: get(&counters.busy),
        typing_sent: get(&counters.typing_sent),
        actions_sent: get(&counters.actions_sent),
        typing_expected: get(&counters.typing_sent) * args.per_room,
        actions_expected: get(&counters.actions_sent) * args.per_room,
        typing_received: get(&counters.typing_received),
        actions_received: get(&counters.actions_received),
        late_sends: get(&counters.late_sends),
        seconds: args.duration as f64,
        latency: encode(&histograms.latency),
        warmup_latency: encode(&histograms.warmup),
        connect: encode(&histograms.connect),
        lag: encode(&histograms.lag),
        server_rss_idle_kib: rss_idle,
    }
}

/// Most handshakes one member tries after 429s, with `--retry`.
const MAX_RETRIES: usize = 60;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// What one handshake gave.
enum Attempt {
    Open(Box<Socket>),
    /// Refused with 429: come back after this long (`Retry-After`).
    Busy(Duration),
    Failed,
}

/// Opens the socket at `url`, as a page of the server's own origin does.
async fn attempt(addr: SocketAddr, url: &str) -> Attempt {
    let connect = async {
        let tcp = TcpSocket::new_v4().ok()?;
        let stream = tcp.connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let mut request = url.into_client_request().ok()?;
        let origin = format!("http://{addr}").parse().ok()?;
        request.headers_mut().insert("origin", origin);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        Some(client_async_with_config(request, stream, Some(config)).await)
    };
    match connect.await {
        Some(Ok((ws, _))) => Attempt::Open(Box::new(ws)),
        Some(Err(tokio_tungstenite::tungstenite::Error::Http(response)))
            if response.status() == 429 =>
        {
            let secs = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            Attempt::Busy(Duration::from_secs(secs))
        }
        _ => Attempt::Failed,
    }
}

/// One member: connects, waits for everyone, sends (players) and receives
/// until the end.
#[allow(clippy::too_many_arguments)]
async fn client(
    addr: SocketAddr,
    url: String,
    args: Args,
    rate: f64,
    player: bool,
    counters: Arc<Counters>,
    histograms: Arc<Mutex<Histograms>>,
    connected: Arc<Barrier>,
    go: Arc<Barrier>,
    started: Arc<std::sync::OnceLock<(Instant, u64)>>,
) {
    let begin = Instant::now();
    let socket = async {
        for _ in 0..=MAX_RETRIES {
            match attempt(addr, &url).await {
                Attempt::Open(ws) => return Some(*ws),
                Attempt::Busy(wait) => {
                    counters.busy.fetch_add(1, Ordering::Relaxed);
                    if !args.retry {
                        return None;
                    }
                    let jitter = Duration::from_millis(fastrand::u64(0..1_000));
                    tokio::time::sleep(wait + jitter).await;
                }
                Attempt::Failed => return None,
            }
        }
        None
    };
    let Some(mut ws) = socket.await else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        connected.wait().await;
        go.wait().await;
        return;
    };
    let _welcome = ws.next().await;
    record(&histograms, |h| &mut h.connect, micros(begin.elapsed()));
    counters.connected.fetch_add(1, Ordering::Relaxed);
    // Reads while the others connect (a slow ramp takes minutes), as a
    // page does: the server's pings are answered, and a socket that
    // answered nothing for its silence limit would be closed.
    let everyone = async {
        connected.wait().await;
        go.wait().await;
    };
    tokio::pin!(everyone);
    loop {
        tokio::select! {
            () = &mut everyone => break,
            message = ws.next(), if !ws.is_terminated() => drop(message),
        }
    }
    let (start, start_micros) = *started.get().expect("set before go");
    let warm = start_micros + args.warmup * 1_000_000;
    let end = start + Duration::from_secs(args.duration);
    let (mut sink, mut stream) = ws.split();
    let sender = async {
        if !player || rate <= 0.0 {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / rate);
        // A random phase, so the players do not all send at once.
        let phase = Duration::from_secs_f64(fastrand::f64() * period.as_secs_f64());
        let mut due = start + phase;
        let mut n = 0_u64;
        while due < end {
            tokio::time::sleep_until(due.into()).await;
            let behind = Instant::now().saturating_duration_since(due);
            record(&histograms, |h| &mut h.lag, micros(behind));
            if behind > LATE {
                counters.late_sends.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
            let action = n.is_multiple_of(args.action_every);
            let event = if action {
                ClientEvent::Action(Action::Running)
            } else {
                ClientEvent::Typing
            };
            let text = ClientFrame::new(event)
                .with_client_id("lg")
                .with_ts(now_micros())
                .to_json();
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
            let sent = if action {
                &counters.actions_sent
            } else {
                &counters.typing_sent
            };
            sent.fetch_add(1, Ordering::Relaxed);
            due += period;
        }
    };
    let receiver = async {
        let stop = tokio::time::sleep_until((end + DRAIN).into());
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(probe) = serde_json::from_str::<Probe>(&text) else { continue };
                        let Some(ts) = probe.ts.filter(|ts| *ts >= start_micros) else { continue };
                        let counter = match probe.kind {
                            "typing" => &counters.typing_received,
                            "action" => &counters.actions_received,
                            _ => continue,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        let latency = now_micros().saturating_sub(ts);
                        record_latency(&histograms, latency, ts < warm);
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
    };
    tokio::join!(sender, receiver);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Virtual time: what the generator's schedule says, not how fast this
    /// machine is.
    async fn ramp_of(per_sec: u64, connections: u32) -> Duration {
        let start = tokio::time::Instant::now();
        let mut pace = ramp_pace(per_sec);
        for _ in 0..connections {
            pace.tick().await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_ramp_opens_as_many_connections_a_second_as_asked_past_a_thousand_too() {
        for per_sec in [100, 3_000, 10_000] {
            let took = ramp_of(per_sec, u32::try_from(per_sec).unwrap() + 1).await;
            let late = took.abs_diff(Duration::from_secs(1));
            assert!(late <= Duration::from_millis(2), "{per_sec}/s: {took:?}");
        }
    }
}
