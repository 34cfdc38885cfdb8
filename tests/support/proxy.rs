//! A TCP proxy between the servers under test and a private Redis that can
//! delay what it forwards, freeze (hold every connection open and forward
//! nothing, as a partition or a stuck Redis does: no RST, no error) and
//! thaw.

use std::{net::SocketAddr, time::Duration};

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
                links.spawn(pipe(client_read, server_write, watching.clone()));
                links.spawn(pipe(server_read, client_write, watching.clone()));
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
}

/// Copies `from` to `to` as `mode` says, keeping the order of the bytes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let (chunks, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            if chunks.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((read_at, chunk)) = queued.recv().await {
            let delay = loop {
                match *mode.borrow_and_update() {
                    Mode::Forward(delay) => break delay,
                    Mode::Frozen => {}
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
