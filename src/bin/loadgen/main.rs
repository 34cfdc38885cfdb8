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

mod member;
mod report;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use battle_status::procfs::{cpu_ticks, rss_kib};
use clap::Parser;

use self::{
    member::run,
    report::{report, Outcome, Summary},
};

/// Connections one process takes at most (the per-process file limit here
/// is 20,000).
const CONNECTIONS_PER_PROCESS: usize = 8_000;
/// Time left after the last send for frames in flight to arrive.
pub const DRAIN: Duration = Duration::from_secs(2);
/// A send later than this behind its schedule counts as the generator
/// falling behind.
pub const LATE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for the battle-status relay (loopback only)"
)]
pub struct Args {
    /// The server, on a loopback address; several (comma-separated) for
    /// instances sharing rooms: a room's members go round-robin over them,
    /// so its two players are on different instances.
    #[arg(long, default_value = "127.0.0.1:3000", value_delimiter = ',')]
    pub addr: Vec<SocketAddr>,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Members per room: two players, the others spectators.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_room: u64,
    /// Frames per second each player sends.
    #[arg(long, default_value_t = 1.25)]
    pub rate: f64,
    /// Every Nth frame a player sends is an action, the others typing.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub action_every: u64,
    /// Seconds of sending, once every connection is open.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds at the start of sending whose frames are delivered and
    /// counted, but whose fan-out latency is reported on a line of its own
    /// (every client starting at once is a burst of its own, mostly the
    /// generator's): the main figures are then the steady state's.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// New connections per second while ramping up (per process).
    #[arg(long, default_value_t = 2_000)]
    pub ramp: u64,
    /// Processes to spread the connections over (0: one per 8,000).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// PID of the server, to report its RSS and CPU; several
    /// (comma-separated) are added up.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Seconds to stay connected and idle before sending, to measure the
    /// server's memory per idle connection.
    #[arg(long, default_value_t = 2)]
    pub idle: u64,
    /// Find the highest per-player rate with loss <= 1 % and p99 <= 50 ms
    /// (one process), instead of one fixed rate.
    #[arg(long)]
    pub search: bool,
    /// On a handshake refused with 429, wait its Retry-After (plus up to
    /// 1 s of jitter) and try again, as the battle page does.
    #[arg(long)]
    pub retry: bool,
    /// Players join with a display name (`name=p<member>`), so that
    /// every frame they send carries it, as on the battle page.
    #[arg(long)]
    pub names: bool,
    /// Print the merged result as JSON too.
    #[arg(long)]
    pub json: bool,
    /// Internal: run the rooms `i, i+n, ...` and print a result line.
    #[arg(long, hide = true)]
    pub shard: Option<String>,
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
