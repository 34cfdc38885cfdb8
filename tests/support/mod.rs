//! Starts the real server on port 0 and talks to it like a browser would.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

pub mod proxy;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use battle_status::{
    protocol::{PlayerKey, PlayerName, Role, RoomName},
    server::{
        backplane::MemoryBus,
        config::Config,
        stats::Stats,
        token::{self, Claims, Secret},
        Server,
    },
};
use futures_util::{SinkExt, StreamExt};
use leptos::config::LeptosOptions;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        client::IntoClientRequest,
        handshake::client::Request,
        http::{HeaderName, HeaderValue},
        protocol::{
            frame::{
                coding::{Data, OpCode},
                Frame,
            },
            CloseFrame, Role as Side,
        },
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};

/// Longest wait for something that should happen at once; a guard against
/// hanging, not a synchronisation.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A running server, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The operators' port, with `--metrics-addr`.
    pub operator_addr: Option<SocketAddr>,
    pub stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<()>>,
    /// For a server on its own runtime: the thread that runs it, and the
    /// way to end it at once.
    thread: Option<std::thread::JoinHandle<()>>,
    crash: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Shuts the server down as SIGTERM would, and waits until it stopped.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            tokio::time::timeout(PATIENCE, running)
                .await
                .expect("the server stops in time")
                .expect("the server task does not panic");
        }
        self.join_thread().await;
    }

    /// Ends a server started by [`spawn_isolated`] as a crash would: every
    /// task and socket it has is dropped where it stands.
    pub async fn crash(&mut self) {
        if let Some(crash) = self.crash.take() {
            let _ = crash.send(());
        }
        self.join_thread().await;
    }

    async fn join_thread(&mut self) {
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            tokio::time::timeout(PATIENCE, joined)
                .await
                .expect("the server stops in time")
                .unwrap()
                .expect("the server thread does not panic");
        }
    }
}

/// The server with its default configuration, on port 0.
pub async fn spawn_app() -> TestServer {
    spawn_app_with(|_| {}).await
}

/// The server on port 0, with `configure` applied to the defaults.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestServer {
    spawn_app_on(&MemoryBus::new(), configure).await
}

/// The server on port 0, sharing rooms with every server spawned on `bus`
/// (unless `configure` sets a Redis URL).
pub async fn spawn_app_on(bus: &MemoryBus, configure: impl FnOnce(&mut Config)) -> TestServer {
    spawn_site(site(), bus, configure).await
}

/// The server with its default configuration, bound on port 0 but not
/// accepting yet: connections wait in the kernel's listen queue.
pub async fn bind_app() -> Server {
    Server::bind(Config::new("127.0.0.1:0".parse().unwrap()), site())
        .await
        .expect("the server binds port 0")
}

/// The server on port 0 serving the site `leptos` describes.
pub async fn spawn_site(
    leptos: LeptosOptions,
    bus: &MemoryBus,
    configure: impl FnOnce(&mut Config),
) -> TestServer {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let server = Server::bind_on(config, leptos, bus)
        .await
        .expect("the server binds port 0");
    let addr = server.local_addr();
    let operator_addr = server.operator_addr();
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        operator_addr,
        stats,
        stop: Some(stop),
        running: Some(running),
        thread: None,
        crash: None,
    }
}

/// The server on port 0 on a runtime and thread of its own, so that
/// [`TestServer::shut_down`] and [`TestServer::crash`] end every task it
/// started, as the end of its process would.
pub async fn spawn_isolated(configure: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let (bound, is_bound) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let (crash, crashed) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let server = Server::bind(config, site())
                .await
                .expect("the server binds port 0");
            let _ = bound.send((server.local_addr(), server.stats()));
            let running = server.run(async {
                let _ = stopped.await;
            });
            tokio::select! {
                () = running => {}
                _ = crashed => {}
            }
        });
        // Dropping the runtime drops every task the server left.
    });
    let (addr, stats) = is_bound.await.expect("the server starts");
    TestServer {
        addr,
        operator_addr: None,
        stats,
        stop: Some(stop),
        running: None,
        thread: Some(thread),
        crash: Some(crash),
    }
}

/// The site the tests' servers serve: the static assets as checked in
/// (pages are rendered on the server and need nothing built).
fn site() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("battle-status")
        .site_root("public")
        .build()
}

/// The socket path of `room` for the player whose tab key is `key`.
pub fn as_player(room: &str, key: &str) -> String {
    format!("/ws/battle/{room}/?player={key}")
}

/// The server's metrics, as text.
pub async fn metrics(server: &TestServer) -> String {
    http_get(server, "/metrics").await.1
}

/// The value of `series` (a name with its labels, as printed) in the
/// metrics `text`, if it is there.
pub fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{series} ")))
        .and_then(|value| value.trim().parse().ok())
}

/// A WebSocket client in a room, past the welcome frame.
pub struct Player {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The member id from the welcome frame.
    pub me: String,
    /// The welcome frame.
    pub welcome: Value,
    last_presence: Option<String>,
}

impl Player {
    pub async fn join(server: &TestServer, room: &str) -> Self {
        Self::join_path(server, &format!("/ws/battle/{room}/")).await
    }

    pub async fn join_path(server: &TestServer, path: &str) -> Self {
        Self::welcomed(Self::connect(server, path).await).await
    }

    /// Reads the welcome frame of a socket that just opened.
    async fn welcomed(mut ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let welcome: Value = match ws.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected the welcome frame, got {other:?}"),
        };
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["protocol"], 1);
        let me = welcome["you"].as_str().expect("a member id").to_owned();
        Self {
            ws,
            me,
            welcome,
            last_presence: None,
        }
    }

    /// Joins as [`join_path`](Self::join_path) does, but a handshake
    /// refused with 429 is tried again after its `Retry-After`, as the page
    /// does; gives up (panics) after `patience`.
    pub async fn join_patiently(server: &TestServer, path: &str, patience: Duration) -> Self {
        let joined = async {
            loop {
                match connect_async(handshake(server, path, &[])).await {
                    Ok((ws, _)) => return Self::welcomed(ws).await,
                    Err(tokio_tungstenite::tungstenite::Error::Http(response))
                        if response.status() == 429 =>
                    {
                        let secs: u64 = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .expect("a 429 says when to retry");
                        tokio::time::sleep(Duration::from_secs(secs)).await;
                    }
                    Err(other) => panic!("the handshake on {path} failed: {other}"),
                }
            }
        };
        tokio::time::timeout(patience, joined)
            .await
            .unwrap_or_else(|_| panic!("no seat on {path} within {patience:?}"))
    }

    /// A socket past the handshake, as a page of the server's own origin
    /// opens it, before any frame is read.
    pub async fn connect(
        server: &TestServer,
        path: &str,
    ) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let (ws, _) = connect_async(handshake(server, path, &[]))
            .await
            .expect("the handshake succeeds");
        ws
    }

    /// Joins `room` with `first` (a text frame) sent in the same write as
    /// the handshake, before the server has answered it, as a client that
    /// does not wait may; past the welcome.
    pub async fn join_eagerly(server: &TestServer, room: &str, first: &str) -> Self {
        let addr = server.addr;
        let mut wire = format!(
            "GET /ws/battle/{room}/ HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .into_bytes();
        let mut frame = Frame::message(first.to_owned(), OpCode::Data(Data::Text), true);
        frame.header_mut().mask = Some([7, 1, 8, 2]);
        frame.format(&mut wire).expect("a frame formats");
        let mut tcp = TcpStream::connect(addr).await.expect("the server listens");
        tcp.write_all(&wire).await.expect("the handshake is sent");
        let answered = async {
            let mut read = Vec::new();
            loop {
                if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                    return (read.split_off(end + 4), read);
                }
                let mut chunk = [0; 1024];
                let n = tcp.read(&mut chunk).await.expect("the answer is read");
                assert_ne!(n, 0, "the server hung up before answering");
                read.extend_from_slice(&chunk[..n]);
            }
        };
        let (rest, head) = tokio::time::timeout(PATIENCE, answered)
            .await
            .expect("the handshake is answered");
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let ws = WebSocketStream::from_partially_read(
            MaybeTlsStream::Plain(tcp),
            rest,
            Side::Client,
            None,
        )
        .await;
        Self::welcomed(ws).await
    }

    /// Closes the socket with `code`, as a browser does.
    pub async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        self.ws
            .close(Some(frame))
            .await
            .expect("the close frame is sent");
    }

    /// Waits for the presence frame `event` about `member`.
    pub async fn expect_presence(&mut self, event: &str, member: &str) {
        let frame = self.next().await;
        assert_eq!(frame["type"], "presence", "{frame}");
        assert_eq!(frame["event"], event, "{frame}");
        assert_eq!(frame["member"]["id"], member, "{frame}");
    }

    /// Two players in `room`, past the first one's notice of the second.
    pub async fn pair(server: &TestServer, room: &str) -> (Self, Self) {
        let mut alice = Self::join(server, room).await;
        let bob = Self::join(server, room).await;
        alice.expect_presence("join", &bob.me).await;
        (alice, bob)
    }

    pub async fn send(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("the frame is sent");
    }

    /// The next text frame other than a heartbeat, as JSON.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = self.next_raw().await;
            if frame["type"] != "heartbeat" {
                return frame;
            }
        }
    }

    /// The next frame of `kind`, skipping every other kind.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next text frame, as JSON.
    pub async fn next_raw(&mut self) -> Value {
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(&text).expect("the server sends JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next presence frame, skipping anything else.
    pub async fn next_presence(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == "presence" {
                self.last_presence = frame["member"]["id"].as_str().map(str::to_owned);
                return frame;
            }
        }
    }

    /// The member named by the last frame from [`next_presence`].
    pub fn last_presence_member(&self) -> String {
        self.last_presence.clone().unwrap_or_default()
    }

    /// Drops the connection without a close frame, as a crashed browser or
    /// a lost network does.
    pub async fn send_close_less_drop(self) {
        drop(self.ws);
    }

    /// The close frame that ends a socket that never got a welcome.
    pub async fn closed_stream(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> CloseFrame {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame arrives in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// The next message of any kind, pings included.
    pub async fn next_any(&mut self) -> Message {
        tokio::time::timeout(PATIENCE, self.ws.next())
            .await
            .expect("a message arrives in time")
            .expect("the socket is open")
            .expect("the message is well formed")
    }

    /// The next frame other than a ping or pong (answered by the client
    /// library itself).
    pub async fn next_message(&mut self) -> Message {
        loop {
            let message = self.next_any().await;
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                return message;
            }
        }
    }

    /// The close frame that ends the connection, after any other frames;
    /// then reads on until the socket ends, which answers the close.
    pub async fn closed_and_answered(&mut self) -> Option<CloseFrame> {
        let frame = self.closed().await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.ws.next()).await {}
        frame
    }

    /// The close frame that ends the connection, after any other frames.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_message().await {
                Message::Close(frame) => return frame,
                Message::Text(_) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// The status line and body of a plain HTTP/1.1 request.
pub async fn http_get(server: &TestServer, path: &str) -> (u16, String) {
    http_request(server, "GET", path, &[], "").await
}

/// The status and whole response of a GET of `path` on `addr` (another
/// port of a server, say).
pub async fn http_get_at(addr: SocketAddr, path: &str) -> (u16, String) {
    request_at(addr, "GET", path, &[], "").await
}

/// The status and whole response of an HTTP/1.1 request.
pub async fn http_request(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    request_at(server.addr, method, path, headers, body).await
}

async fn request_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        addr,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("the response arrives in time")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, response)
}

/// A handshake request on `path` from a page of the server's own origin,
/// with extra `headers` (an empty value removes the header).
pub fn handshake(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .expect("a valid URL");
    let origin = format!("http://{}", server.addr);
    let all = [("origin", origin.as_str())]
        .into_iter()
        .chain(headers.iter().copied());
    for (name, value) in all {
        let name = HeaderName::try_from(name).unwrap();
        if value.is_empty() {
            request.headers_mut().remove(&name);
        } else {
            request
                .headers_mut()
                .insert(name, HeaderValue::from_str(value).unwrap());
        }
    }
    request
}

/// The HTTP status a WebSocket handshake on `path` was refused with.
pub async fn refused_handshake(server: &TestServer, path: &str) -> u16 {
    refused(handshake(server, path, &[])).await
}

/// The HTTP status a handshake `request` was refused with.
pub async fn refused(request: Request) -> u16 {
    refusal(request).await.0
}

/// The HTTP status and `Retry-After` a handshake `request` was refused with.
pub async fn refusal(request: Request) -> (u16, Option<u64>) {
    let path = request.uri().to_string();
    match connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake on {path} should be refused"),
    }
}

/// Posts a verdict `body` to the judge's API of `server`, with `secret` as
/// the bearer; the status and body of the answer.
pub async fn post_verdict(
    server: &TestServer,
    room: &str,
    secret: &str,
    body: &str,
) -> (u16, String) {
    let bearer = format!("Bearer {secret}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let path = format!("/api/battles/{room}/events");
    http_request(server, "POST", &path, &headers, body).await
}

/// A private `redis-server` on a free loopback port, with no persistence,
/// killed when dropped. `scripts/setup.sh --test` installs the binary.
pub struct RedisServer {
    pub port: u16,
    child: tokio::process::Child,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port).await
    }

    /// Starts one on `port` and waits until it says it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// Starts one on `port` with `extra` arguments (`--replicaof ...`, say).
    pub async fn start_with(port: u16, extra: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        // Its own empty folder: a replica writes what it syncs to disk, and
        // a server started in the same folder later would load it.
        let dir = std::env::temp_dir().join(format!("battle-redis-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a folder for redis-server");
        let mut child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (scripts/setup.sh --test installs it)");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.expect("redis-server's output") {
                if line.contains("Ready to accept connections") {
                    return;
                }
            }
            panic!("redis-server on port {port} exited before it was ready");
        };
        tokio::time::timeout(PATIENCE, ready)
            .await
            .expect("redis-server starts in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Its answer to one command.
    pub async fn query(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async(&mut connection).await.unwrap()
    }

    /// Kills it as a crash would (SIGKILL), and waits until it is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("redis-server is killed");
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        *self = Self::start_on(self.port).await;
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A Redis master, a replica of it, and three Sentinels watching them as
/// `mymaster`, each on a free port, killed when dropped.
pub struct SentinelGroup {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<(u16, tokio::process::Child)>,
    dir: std::path::PathBuf,
}

impl SentinelGroup {
    /// Starts them, and waits until the Sentinels know the replica.
    pub async fn start() -> Self {
        let master = RedisServer::start().await;
        let master_port = master.port.to_string();
        let replica =
            RedisServer::start_with(free_port(), &["--replicaof", "127.0.0.1", &master_port]).await;
        let dir = std::env::temp_dir().join(format!("battle-sentinels-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sentinels = Vec::new();
        for n in 0..3 {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{n}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds mymaster 1000\n\
                     sentinel failover-timeout mymaster 3000\n"
                ),
            )
            .unwrap();
            let child = tokio::process::Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server runs as a Sentinel");
            sentinels.push((port, child));
        }
        let group = Self {
            master,
            replica,
            sentinels,
            dir,
        };
        let replica_port = group.replica.port.to_string();
        group
            .poll_sentinel(&["SENTINEL", "replicas", "mymaster"], |answer| {
                answer.contains(&replica_port)
            })
            .await;
        group
    }

    /// The Sentinels' addresses, for `--redis-sentinel`.
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Makes the replica the master (`SENTINEL FAILOVER`), and waits until
    /// the Sentinels say so.
    pub async fn fail_over(&self) {
        // "NOGOODSLAVE" until the Sentinels have heard from the replica.
        self.poll_sentinel(&["SENTINEL", "FAILOVER", "mymaster"], |answer| {
            answer.trim() == "OK"
        })
        .await;
        let replica_port = self.replica.port.to_string();
        self.poll_sentinel(
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
            |answer| answer.contains(&replica_port),
        )
        .await;
    }

    async fn sentinel(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.sentinels[0].0.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn poll_sentinel(&self, args: &[&str], done: impl Fn(&str) -> bool) {
        let polled = async {
            loop {
                if done(&self.sentinel(args).await) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), polled)
            .await
            .unwrap_or_else(|_| {
                panic!("the Sentinels did not answer {args:?} as expected in time")
            });
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server on port 0 that shares rooms through `redis`, once it reports
/// ready (linked to Redis).
pub async fn spawn_on_redis(redis: &RedisServer) -> TestServer {
    spawn_on_redis_with(redis, |_| {}).await
}

/// Like [`spawn_on_redis`], with `configure` applied to the defaults.
pub async fn spawn_on_redis_with(
    redis: &RedisServer,
    configure: impl FnOnce(&mut Config),
) -> TestServer {
    let url = redis.url();
    let server = spawn_app_with(|config| {
        configure(config);
        config.redis_url = Some(url);
    })
    .await;
    wait_for_readiness(&server, 200).await;
    server
}

/// Waits until `/readyz` answers `status`; panics after [`LINK_PATIENCE`].
pub async fn wait_for_readiness(server: &TestServer, status: u16) {
    let answered = || async { http_get(server, "/readyz").await.0 == status };
    until(
        LINK_PATIENCE,
        answered,
        &format!("/readyz answers {status}"),
    )
    .await;
}

/// Asks `done` every 20 ms until it says yes, for something the server
/// does after answering (nothing a test can wait on tells it); panics,
/// saying `what` did not happen, after `patience`.
pub async fn until<F, Fut>(patience: Duration, mut done: F, what: &str)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(patience, polled)
        .await
        .unwrap_or_else(|_| panic!("in time: {what}"));
}

/// Longest wait for an instance to notice Redis went away or came back:
/// its reconnection backoff is capped at 2 s.
pub const LINK_PATIENCE: Duration = Duration::from_secs(15);

/// Several instances sharing rooms: through one in-process bus, or through
/// a private Redis server.
pub enum Fleet {
    InProcess(MemoryBus),
    Redis(RedisServer),
}

impl Fleet {
    pub fn in_process() -> Self {
        Self::InProcess(MemoryBus::new())
    }

    pub async fn redis() -> Self {
        Self::Redis(RedisServer::start().await)
    }

    /// One more instance, ready.
    pub async fn spawn(&self) -> TestServer {
        self.spawn_with(|_| {}).await
    }

    /// One more instance with `configure` applied to the defaults, ready.
    pub async fn spawn_with(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        match self {
            Self::InProcess(bus) => spawn_app_on(bus, configure).await,
            Self::Redis(redis) => spawn_on_redis_with(redis, configure).await,
        }
    }
}

/// A join token signed with `secret` for `player` in `room`, valid for an
/// hour, naming the player `name` if given.
pub fn player_token(secret: &str, room: &str, player: &str, name: Option<&str>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600;
    let claims = Claims {
        room: RoomName::parse(room).unwrap(),
        player: PlayerKey::parse(player).unwrap(),
        role: Role::Player,
        name: name.map(|name| PlayerName::parse(name).unwrap()),
        exp,
    };
    token::mint(&Secret::new(secret).unwrap(), &claims)
}
