//! Starts the real server on port 0 and talks to it like a browser would.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use battle_status::server::{config::Config, stats::Stats, Server};
use futures_util::{SinkExt, StreamExt};
use leptos::config::LeptosOptions;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{protocol::CloseFrame, Message},
    MaybeTlsStream, WebSocketStream,
};

/// Longest wait for something that should happen at once; a guard against
/// hanging, not a synchronisation.
const PATIENCE: Duration = Duration::from_secs(5);

/// A running server, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app() -> TestServer {
    let leptos = LeptosOptions::builder()
        .output_name("battle-status")
        .site_root("target/site")
        .build();
    let server = Server::bind(Config::new("127.0.0.1:0".parse().unwrap()), leptos)
        .await
        .expect("the server binds port 0");
    let addr = server.local_addr();
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        stats,
        _stop: stop,
    }
}

/// A WebSocket client in a room, past the welcome frame.
pub struct Player {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The member id from the welcome frame.
    pub me: String,
}

impl Player {
    pub async fn join(server: &TestServer, room: &str) -> Self {
        Self::join_path(server, &format!("/ws/battle/{room}/")).await
    }

    pub async fn join_path(server: &TestServer, path: &str) -> Self {
        let url = format!("ws://{}{path}", server.addr);
        let (ws, _) = connect_async(url).await.expect("the handshake succeeds");
        let mut player = Self {
            ws,
            me: String::new(),
        };
        let welcome = player.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["protocol"], 1);
        player.me = welcome["you"].as_str().expect("a member id").to_owned();
        player
    }

    pub async fn send(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    pub async fn send_message(&mut self, message: Message) {
        self.ws.send(message).await.expect("the frame is sent");
    }

    /// The next text frame, as JSON.
    pub async fn next(&mut self) -> Value {
        match self.next_message().await {
            Message::Text(text) => serde_json::from_str(&text).expect("the server sends JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame of any kind.
    pub async fn next_message(&mut self) -> Message {
        tokio::time::timeout(PATIENCE, self.ws.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .expect("the frame is well formed")
    }

    /// The close frame that ends the connection.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        match self.next_message().await {
            Message::Close(frame) => frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// The status line and body of a plain HTTP/1.1 request.
pub async fn http_get(server: &TestServer, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
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

/// The HTTP status a WebSocket handshake on `path` was refused with.
pub async fn refused_handshake(server: &TestServer, path: &str) -> u16 {
    let url = format!("ws://{}{path}", server.addr);
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake on {path} should be refused"),
    }
}
