//! A TCP proxy between the servers under test and a private Redis that can
//! delay what it forwards, delay only the replies to commands (Redis runs
//! them and publishes at once, the caller hears back late), freeze (hold
//! every connection open and forward nothing, as a partition or a stuck
//! Redis does: no RST, no error) and thaw.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
    task::JoinSet,
    time::Instant,
};

/// What the proxy does with the bytes it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward each chunk this long after it was read.
    Forward(Duration),
    /// Forward Redis' replies on connections that never subscribed this
    /// long after they were read, everything else at once.
    SlowReplies(Duration),
    /// Forward nothing (keep it for the thaw).
    Frozen,
}

/// A running proxy; stops (dropping every connection) when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    _tasks: JoinSet<()>,
}

impl Proxy {
    /// A proxy on a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Forward(Duration::ZERO));
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let subscriber = Arc::new(AtomicBool::new(false));
                let to_server = Way::ToServer(subscriber.clone());
                let to_client = Way::ToClient(subscriber);
                links.spawn(pipe(client_read, server_write, to_server, watching.clone()));
                links.spawn(pipe(server_read, client_write, to_client, watching.clone()));
            }
        });
        Self {
            addr,
            mode,
            _tasks: tasks,
        }
    }

    /// The Redis URL through the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Holds every byte from now on; connections stay open.
    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Frozen);
    }

    /// Forwards again, what was held first.
    pub fn thaw(&self) {
        self.mode.send_replace(Mode::Forward(Duration::ZERO));
    }

    /// Forwards each chunk `delay` after it was read, each way.
    pub fn delay(&self, delay: Duration) {
        self.mode.send_replace(Mode::Forward(delay));
    }

    /// Forwards Redis' replies to commands `delay` after they were read:
    /// what a command publishes reaches subscribers at once.
    pub fn slow_replies(&self, delay: Duration) {
        self.mode.send_replace(Mode::SlowReplies(delay));
    }
}

/// Which way a pipe copies, and whether its connection subscribed (it sent
/// `SUBSCRIBE`).
enum Way {
    ToServer(Arc<AtomicBool>),
    ToClient(Arc<AtomicBool>),
}

impl Way {
    /// Marks the connection as a subscriber if `chunk` subscribes.
    fn read(&self, chunk: &[u8]) {
        if let Self::ToServer(subscriber) = self {
            if chunk.windows(9).any(|word| word == b"SUBSCRIBE") {
                subscriber.store(true, Ordering::Relaxed);
            }
        }
    }

    /// How long a chunk going this way waits in `mode`; `None` if frozen.
    fn delay(&self, mode: Mode) -> Option<Duration> {
        match (mode, self) {
            (Mode::Frozen, _) => None,
            (Mode::Forward(delay), _) => Some(delay),
            (Mode::SlowReplies(delay), Self::ToClient(subscriber))
                if !subscriber.load(Ordering::Relaxed) =>
            {
                Some(delay)
            }
            (Mode::SlowReplies(_), _) => Some(Duration::ZERO),
        }
    }
}

/// Copies `from` to `to` as `mode` says, keeping the order of the bytes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    way: Way,
    mut mode: watch::Receiver<Mode>,
) {
    let way = &way;
    let (chunks, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            way.read(&buffer[..n]);
            if chunks.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((read_at, chunk)) = queued.recv().await {
            let delay = loop {
                if let Some(delay) = way.delay(*mode.borrow_and_update()) {
                    break delay;
                }
                if mode.changed().await.is_err() {
                    return;
                }
            };
            tokio::time::sleep_until(read_at + delay).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}
