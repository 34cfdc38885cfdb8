//! Load generator for the battle-status relay (see docs/performance.md).
//!
//! Opens real WebSocket connections over loopback, in rooms of `--per-room`
//! members, makes each player send frames in the protocol's exact shape at
//! `--rate` per second (an action every `--action-every` frames, typing
//! otherwise), and measures at the receiving members: fan-out latency (HDR
//! histogram), deliveries expected and received, delivered frames per
//! second, connection success and time; with `--server-pid`, the server's
//! RSS and CPU. It reports when it fell behind its own send schedule, so its
//! limits are not mistaken for the server's.
//!
//! A process may hold at most 20,000 files here: `--processes` (by default
//! one per 8,000 connections) spreads the connections over copies of this
//! program, whose results are merged. Bounded: it only targets loopback and
//! stops by itself.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, ExitCode, Stdio},
    sync::Mutex,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::{
    serialization::{Deserializer, Serializer, V2Serializer},
    Histogram,
};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpSocket, sync::Barrier, task::JoinSet};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig, Message},
};

/// Connections one process takes at most (the per-process file limit here
/// is 20,000).
const CONNECTIONS_PER_PROCESS: usize = 8_000;
/// Time left after the last send for frames in flight to arrive.
const DRAIN: Duration = Duration::from_secs(2);
/// A send later than this behind its schedule counts as the generator
/// falling behind.
const LATE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for the battle-status relay (loopback only)"
)]
struct Args {
    /// The server, on a loopback address; several (comma-separated) for
    /// instances sharing rooms: a room's members go round-robin over them,
    /// so its two players are on different instances.
    #[arg(long, default_value = "127.0.0.1:3000", value_delimiter = ',')]
    addr: Vec<SocketAddr>,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Members per room: two players, the others spectators.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    per_room: u64,
    /// Frames per second each player sends.
    #[arg(long, default_value_t = 1.25)]
    rate: f64,
    /// Every Nth frame a player sends is an action, the others typing.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    action_every: u64,
    /// Seconds of sending, once every connection is open.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// New connections per second while ramping up (per process).
    #[arg(long, default_value_t = 2_000)]
    ramp: u64,
    /// Processes to spread the connections over (0: one per 8,000).
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// PID of the server, to report its RSS and CPU; several
    /// (comma-separated) are added up.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Seconds to stay connected and idle before sending, to measure the
    /// server's memory per idle connection.
    #[arg(long, default_value_t = 2)]
    idle: u64,
    /// Find the highest per-player rate with loss <= 1 % and p99 <= 50 ms
    /// (one process), instead of one fixed rate.
    #[arg(long)]
    search: bool,
    /// Print the merged result as JSON too.
    #[arg(long)]
    json: bool,
    /// Internal: run the rooms `i, i+n, ...` and print a result line.
    #[arg(long, hide = true)]
    shard: Option<String>,
}

/// What one process measured.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Outcome {
    connected: u64,
    failed: u64,
    typing_sent: u64,
    actions_sent: u64,
    typing_expected: u64,
    actions_expected: u64,
    typing_received: u64,
    actions_received: u64,
    late_sends: u64,
    seconds: f64,
    /// Base64 V2 HDR histograms, microseconds.
    latency: String,
    connect: String,
    lag: String,
    server_rss_idle_kib: Option<u64>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn encode(histogram: &Histogram<u64>) -> String {
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

/// The fields of a relayed frame the generator reads.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    ts: Option<u64>,
}

/// RSS of the processes, in KiB; `None` if there are none.
fn rss_kib(pids: &[u32]) -> Option<u64> {
    let _ = pids.first()?;
    pids.iter().map(|&pid| process_rss_kib(pid)).sum()
}

/// CPU time (user + system) of the processes, in clock ticks; `None` if
/// there are none.
fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    let _ = pids.first()?;
    pids.iter().map(|&pid| process_cpu_ticks(pid)).sum()
}

/// RSS of a process, in KiB.
fn process_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) of a process, in clock ticks.
fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[derive(Default)]
struct Counters {
    typing_sent: AtomicU64,
    actions_sent: AtomicU64,
    typing_received: AtomicU64,
    actions_received: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    late_sends: AtomicU64,
}

/// The process's histograms, shared by its clients (one set per process:
/// a set per client would cost more memory than the server under test).
struct Histograms {
    latency: Histogram<u64>,
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

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the rooms `shard, shard + shards, ...` at `rate`; returns what it saw.
async fn run(args: &Args, shard: usize, shards: usize, rate: f64) -> Outcome {
    let rooms: Vec<usize> = (shard..args.rooms).step_by(shards).collect();
    let members = rooms.len() * usize::try_from(args.per_room).unwrap_or(usize::MAX);
    let counters = Arc::new(Counters::default());
    let connected = Arc::new(Barrier::new(members + 1));
    let go = Arc::new(Barrier::new(members + 1));
    let started = Arc::new(std::sync::OnceLock::<(Instant, u64)>::new());
    let histograms = Arc::new(Mutex::new(Histograms {
        latency: histogram(),
        connect: histogram(),
        lag: histogram(),
    }));
    let mut tasks = JoinSet::new();
    let pause = Duration::from_secs_f64(1.0 / args.ramp.max(1) as f64);
    let run_id = now_micros();
    for room in &rooms {
        for member in 0..args.per_room {
            let role = if member < 2 { "player" } else { "spectator" };
            let addr = args.addr[usize::try_from(member).unwrap_or(0) % args.addr.len()];
            let url = format!("ws://{addr}/ws/battle/lg-{run_id}-{room}/?role={role}");
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
            tokio::time::sleep(pause).await;
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
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "[shard {shard}] {:>4.0}s sent {} received {}",
                    begin.elapsed().as_secs_f64(),
                    counters.typing_sent.load(Ordering::Relaxed)
                        + counters.actions_sent.load(Ordering::Relaxed),
                    counters.typing_received.load(Ordering::Relaxed)
                        + counters.actions_received.load(Ordering::Relaxed),
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
        typing_sent: get(&counters.typing_sent),
        actions_sent: get(&counters.actions_sent),
        typing_expected: get(&counters.typing_sent) * args.per_room,
        actions_expected: get(&counters.actions_sent) * args.per_room,
        typing_received: get(&counters.typing_received),
        actions_received: get(&counters.actions_received),
        late_sends: get(&counters.late_sends),
        seconds: args.duration as f64,
        latency: encode(&histograms.latency),
        connect: encode(&histograms.connect),
        lag: encode(&histograms.lag),
        server_rss_idle_kib: rss_idle,
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
        let tcp = TcpSocket::new_v4().ok()?;
        let stream = tcp.connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let mut request = url.into_client_request().ok()?;
        let origin = format!("http://{addr}").parse().ok()?;
        request.headers_mut().insert("origin", origin);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = client_async_with_config(request, stream, Some(config))
            .await
            .ok()?;
        Some(ws)
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
    connected.wait().await;
    go.wait().await;
    let (start, start_micros) = *started.get().expect("set before go");
    let end = start + Duration::from_secs(args.duration);
    let (mut sink, mut stream) = ws.split();
    let sender = async {
        if !player || rate <= 0.0 {
            return;
        }
        let period = Duration::from_secs_f64(1.0 / rate);
        // A random phase, so the players do not all send at once.
        let phase = Duration::from_secs_f64(fastrand_phase() * period.as_secs_f64());
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
            let text = if action {
                format!(
                    r#"{{"type":"action","clientId":"lg","action":"RUNNING","ts":{}}}"#,
                    now_micros()
                )
            } else {
                format!(
                    r#"{{"type":"typing","clientId":"lg","ts":{}}}"#,
                    now_micros()
                )
            };
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
                        record(&histograms, |h| &mut h.latency, now_micros().saturating_sub(ts));
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
    };
    tokio::join!(sender, receiver);
}

/// A uniform number in [0, 1), good enough to spread phases.
fn fastrand_phase() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(nanos)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(17);
    (mixed >> 11) as f64 / (1_u64 << 53) as f64
}

/// The merged outcome of every shard, printed for people.
fn report(
    outcomes: &[Outcome],
    args: &Args,
    rate: f64,
    cpu: Option<f64>,
    rss_end: Option<u64>,
) -> Summary {
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let (mut latency, mut connect, mut lag) = (histogram(), histogram(), histogram());
    for outcome in outcomes {
        let _ = latency.add(decode(&outcome.latency));
        let _ = connect.add(decode(&outcome.connect));
        let _ = lag.add(decode(&outcome.lag));
    }
    let expected = sum(|o| o.typing_expected + o.actions_expected);
    let received = sum(|o| o.typing_received + o.actions_received);
    let actions_expected = sum(|o| o.actions_expected);
    let actions_received = sum(|o| o.actions_received);
    let connected = sum(|o| o.connected);
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let rss_idle: Option<u64> = outcomes.iter().filter_map(|o| o.server_rss_idle_kib).max();
    let summary = Summary {
        connections: connected,
        failed: sum(|o| o.failed),
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
        connect_p50_ms: ms(&connect, 0.5),
        connect_p99_ms: ms(&connect, 0.99),
        send_lag_p99_ms: ms(&lag, 0.99),
        late_sends: sum(|o| o.late_sends),
        server_rss_idle_kib: rss_idle,
        server_rss_end_kib: rss_end,
        server_cpu_percent: cpu,
    };
    eprintln!(
        "\n{} connections ({} failed), {} rooms x {}, {:.2} frames/s per player, {} s",
        summary.connections, summary.failed, args.rooms, args.per_room, rate, args.duration
    );
    eprintln!(
        "deliveries: {} expected, {} received, loss {:.3} %, actions lost {}",
        expected, received, summary.loss_percent, summary.actions_lost
    );
    eprintln!("delivered: {:.0} frames/s", summary.delivered_per_sec);
    eprintln!(
        "fan-out latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.p999_ms, summary.max_ms
    );
    eprintln!(
        "connect ms: p50 {:.2}  p99 {:.2}",
        summary.connect_p50_ms, summary.connect_p99_ms
    );
    eprintln!(
        "generator: send lag p99 {:.2} ms, {} sends more than {} ms late{}",
        summary.send_lag_p99_ms,
        summary.late_sends,
        LATE.as_millis(),
        if summary.late_sends * 100 > sum(|o| o.typing_sent + o.actions_sent) {
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
struct Summary {
    connections: u64,
    failed: u64,
    rate_per_player: f64,
    expected: u64,
    received: u64,
    loss_percent: f64,
    actions_lost: u64,
    delivered_per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    connect_p50_ms: f64,
    connect_p99_ms: f64,
    send_lag_p99_ms: f64,
    late_sends: u64,
    server_rss_idle_kib: Option<u64>,
    server_rss_end_kib: Option<u64>,
    server_cpu_percent: Option<f64>,
}

/// Runs the shards as child processes and collects their result lines.
fn run_processes(shards: usize) -> Vec<Outcome> {
    let exe = std::env::current_exe().expect("the path of this program");
    let children: Vec<_> = (0..shards)
        .map(|shard| {
            let mut command = Command::new(&exe);
            command
                .args(std::env::args().skip(1))
                .args(["--shard", &format!("{shard}/{shards}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            command.spawn().expect("a shard process starts")
        })
        .collect();
    children
        .into_iter()
        .filter_map(|mut child| {
            let stdout = child.stdout.take()?;
            let outcome = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| {
                    line.strip_prefix("RESULT ")
                        .and_then(|json| serde_json::from_str(json).ok())
                });
            let _ = child.wait();
            outcome
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.addr.iter().all(|addr| addr.ip().is_loopback()) {
        eprintln!("loadgen: only loopback addresses are targets");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(shard) = &args.shard {
        let (shard, shards) = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .unwrap_or((0, 1));
        let outcome = runtime.block_on(run(&args, shard, shards, args.rate));
        println!(
            "RESULT {}",
            serde_json::to_string(&outcome).expect("serialisable")
        );
        return ExitCode::SUCCESS;
    }
    let connections = args.rooms * usize::try_from(args.per_room).unwrap_or(usize::MAX);
    let shards = match args.processes {
        0 => connections.div_ceil(CONNECTIONS_PER_PROCESS).max(1),
        n => n,
    };
    if args.search {
        return search(&args, &runtime);
    }
    let cpu_start = cpu_ticks(&args.server_pid);
    let wall = Instant::now();
    let outcomes = if shards == 1 {
        vec![runtime.block_on(run(&args, 0, 1, args.rate))]
    } else {
        run_processes(shards)
    };
    let cpu = cpu_usage(&args, cpu_start, wall);
    let rss_end = rss_kib(&args.server_pid);
    let summary = report(&outcomes, &args, args.rate, cpu, rss_end);
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("serialisable"));
    }
    ExitCode::SUCCESS
}

/// Server CPU over the whole run, in % of one core.
fn cpu_usage(args: &Args, start: Option<u64>, wall: Instant) -> Option<f64> {
    let ticks = cpu_ticks(&args.server_pid)?.checked_sub(start?)?;
    // Linux reports CPU time in ticks of 1/100 s.
    Some(ticks as f64 / wall.elapsed().as_secs_f64())
}

/// Raises the per-player rate until loss or p99 is over the bar, then
/// narrows down: the highest sustainable delivered rate.
fn search(args: &Args, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let sustainable = |summary: &Summary| summary.loss_percent <= 1.0 && summary.p99_ms <= 50.0;
    let (mut good, mut bad) = (0.0_f64, None::<f64>);
    let mut rate = args.rate.max(1.0);
    let mut best = None;
    for _ in 0..12 {
        eprintln!("\n== trying {rate:.1} frames/s per player");
        let cpu_start = cpu_ticks(&args.server_pid);
        let wall = Instant::now();
        let outcome = runtime.block_on(run(args, 0, 1, rate));
        let cpu = cpu_usage(args, cpu_start, wall);
        let summary = report(&[outcome], args, rate, cpu, rss_kib(&args.server_pid));
        if sustainable(&summary) {
            good = rate;
            best = Some(summary);
        } else {
            bad = Some(rate);
        }
        rate = match bad {
            None => rate * 2.0,
            Some(bad) if bad / good.max(1.0) < 1.15 => break,
            Some(bad) => (good + bad) / 2.0,
        };
    }
    match best {
        Some(best) => {
            eprintln!(
                "\nhighest sustainable: {:.1} frames/s per player, {:.0} delivered frames/s, p99 {:.2} ms, loss {:.3} %",
                best.rate_per_player, best.delivered_per_sec, best.p99_ms, best.loss_percent
            );
            if args.json {
                println!("{}", serde_json::to_string(&best).expect("serialisable"));
            }
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("no sustainable rate found");
            ExitCode::FAILURE
        }
    }
}
