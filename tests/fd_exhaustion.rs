//! The server out of file descriptors: no crash, no busy loop, open
//! connections unaffected, a clear log line, and new connections accepted
//! again once some close. The real binary runs with a low descriptor limit.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, Message},
    MaybeTlsStream, WebSocketStream,
};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Descriptors the server may hold: a few for itself, the rest sockets.
const LIMIT: usize = 64;

struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let command = format!(
        "ulimit -n {LIMIT} && exec '{}' --addr 127.0.0.1:0 --allow-missing-origin --connections-per-ip-burst 1000 --max-connections-per-ip 1000",
        env!("CARGO_BIN_EXE_battle-status")
    );
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let log = Arc::new(Mutex::new(String::new()));
    let (found, addr) = std::sync::mpsc::channel();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let _ = found.send(line[at + "listening on http://".len()..].trim().to_owned());
            }
            keep.lock().unwrap().push_str(&line);
            keep.lock().unwrap().push('\n');
        }
    });
    let addr = addr
        .recv_timeout(Duration::from_secs(10))
        .expect("the server listens");
    Server { child, addr, log }
}

async fn open(server: &Server, room: usize) -> Option<Socket> {
    let request = format!("ws://{}/ws/battle/fd-{room}/", server.addr)
        .into_client_request()
        .unwrap();
    // A guard against waiting forever in the server's backlog, not a
    // synchronisation.
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(1), connect_async(request))
        .await
        .ok()?
        .ok()?;
    let welcome = tokio::time::timeout(Duration::from_secs(2), ws.next())
        .await
        .ok()??
        .ok()?;
    matches!(welcome, Message::Text(_)).then_some(ws)
}

fn cpu_ticks(pid: u32) -> u64 {
    battle_status::procfs::process_cpu_ticks(pid).expect("the server's CPU time")
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_file_descriptors_the_server_keeps_going_and_recovers() {
    let server = start();
    let mut open_sockets = Vec::new();
    let mut refused = 0;
    for room in 0..LIMIT + 10 {
        match open(&server, room).await {
            Some(ws) => open_sockets.push(ws),
            None => refused += 1,
        }
        if refused == 2 {
            break;
        }
    }
    assert!(refused > 0, "the limit was reached");
    assert!(open_sockets.len() >= 10, "{} opened", open_sockets.len());

    let pid = server.child.id();
    let before = cpu_ticks(pid);
    // The server is out of descriptors now: over a second, no busy loop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(pid) - before;
    assert!(spent < 50, "the server spun: {spent} ticks in a second");

    let first = &mut open_sockets[0];
    first
        .send(Message::text(r#"{"type":"action","action":"AC"}"#))
        .await
        .unwrap();
    let answer = async {
        loop {
            match first.next().await {
                Some(Ok(Message::Text(text))) => return text,
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(2), answer)
        .await
        .expect("an open connection still gets answers");
    assert!(answer.contains(r#""action":"AC""#), "{answer}");
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("cannot accept connections"),
        "a clear log line in\n{}",
        server.log.lock().unwrap()
    );

    open_sockets.truncate(open_sockets.len() / 2);
    let mut recovered = None;
    for room in 0..20 {
        recovered = open(&server, 1_000 + room).await;
        if recovered.is_some() {
            break;
        }
    }
    assert!(recovered.is_some(), "new connections are accepted again");
    assert!(server.child.id() == pid);
}
