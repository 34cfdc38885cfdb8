//! The page's socket to its room, on gloo-net's WebSocket: opening one per
//! connection attempt, reading it in a local task until it closes, and
//! sending frames while it is open.

use std::{
    future::poll_fn,
    pin::Pin,
    rc::{Rc, Weak},
    task::Poll,
};

use futures_util::{Sink, Stream};
use gloo_net::websocket::{futures::WebSocket, Message, State, WebSocketError};
use leptos::logging::warn;

use super::{page::name_param, Inner};
use crate::protocol::{ClientEvent, ClientFrame, Close};

/// The socket of one connection attempt.
pub struct Socket {
    ws: WebSocket,
    attempt: u32,
}

impl Socket {
    /// Closes the socket with `close`'s code and reason.
    pub fn close(self, close: Close) {
        if let Err(error) = self.ws.close(Some(close.code()), Some(close.reason())) {
            warn!("cannot close the battle socket: {error}");
        }
    }
}

fn is_open(ws: &WebSocket) -> bool {
    matches!(ws.state(), State::Open)
}

/// What the socket of an attempt said next.
enum Heard {
    /// A frame from the server.
    Text(String),
    /// The socket closed with this code and reason.
    Closed(u16, String),
    /// The attempt is over: its socket was closed or replaced here.
    Over,
}

impl Inner {
    /// Opens a new socket (the previous one, if any, is closed silently).
    pub(super) fn connect(self: &Rc<Self>) {
        self.retry.borrow_mut().take();
        self.drop_socket();
        let name = name_param(self.name.borrow().as_ref());
        let url = match self.last_seq.get() {
            0 => format!("{}{name}", self.url),
            seen => format!("{}{name}&since={seen}", self.url),
        };
        let ws = match WebSocket::open(&url) {
            Ok(ws) => ws,
            Err(error) => {
                warn!("cannot open the battle socket: {error}");
                self.reconnect_later(None);
                return;
            }
        };
        let attempt = self.attempts.get().wrapping_add(1);
        self.attempts.set(attempt);
        self.opened.set(false);
        *self.socket.borrow_mut() = Some(Socket { ws, attempt });
        self.watch();
        leptos::task::spawn_local(read(Rc::downgrade(self), attempt));
    }

    /// Closes the current socket, if any, without hearing about it.
    pub(super) fn drop_socket(&self) {
        self.socket.borrow_mut().take();
    }

    pub(super) fn send(&self, event: ClientEvent) {
        let mut socket = self.socket.borrow_mut();
        // Nothing is queued while disconnected: a stale ping would show
        // "Typing..." after the fact.
        let Some(socket) = socket.as_mut().filter(|s| is_open(&s.ws)) else {
            return;
        };
        let frame = ClientFrame::new(event)
            .with_client_id(self.client_id.clone())
            .with_ts(js_sys::Date::now() as u64);
        if let Err(error) = Pin::new(&mut socket.ws).start_send(Message::Text(frame.to_json())) {
            warn!("frame not sent: {error}");
        }
    }

    /// Waits until the socket of `attempt` opened or failed to: `true` if
    /// it is open.
    async fn opened(self: &Rc<Self>, attempt: u32) -> bool {
        poll_fn(|cx| match self.socket.borrow_mut().as_mut() {
            Some(socket) if socket.attempt == attempt => Pin::new(&mut socket.ws)
                .poll_ready(cx)
                .map(|_| is_open(&socket.ws)),
            _ => Poll::Ready(false),
        })
        .await
    }

    /// The next thing the socket of `attempt` says.
    async fn next(self: &Rc<Self>, attempt: u32) -> Heard {
        poll_fn(|cx| loop {
            let mut socket = self.socket.borrow_mut();
            let Some(socket) = socket.as_mut().filter(|s| s.attempt == attempt) else {
                return Poll::Ready(Heard::Over);
            };
            match Pin::new(&mut socket.ws).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(Message::Text(text)))) => {
                    return Poll::Ready(Heard::Text(text))
                }
                Poll::Ready(Some(Err(WebSocketError::ConnectionClose(event)))) => {
                    return Poll::Ready(Heard::Closed(event.code, event.reason))
                }
                // Binary frames are not part of the protocol; an error
                // event is followed by the close event.
                Poll::Ready(Some(Ok(Message::Bytes(_)) | Err(_))) => {}
                Poll::Ready(None) => return Poll::Ready(Heard::Closed(1006, String::new())),
            }
        })
        .await
    }
}

/// Reads the socket of `attempt` until it closes or the attempt is over,
/// handing each frame to the page. Holds the page weakly.
async fn read(inner: Weak<Inner>, attempt: u32) {
    let Some(page) = inner.upgrade() else {
        return;
    };
    let opened = page.opened(attempt).await;
    page.opened.set(opened);
    drop(page);
    loop {
        let Some(page) = inner.upgrade() else {
            return;
        };
        match page.next(attempt).await {
            Heard::Text(text) => page.receive(&text),
            Heard::Closed(code, reason) => {
                page.closed(code, &reason);
                return;
            }
            Heard::Over => return,
        }
    }
}
