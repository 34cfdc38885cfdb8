//! The browser build of the client API.

use std::{
    cell::RefCell,
    rc::{Rc, Weak},
};

use gloo_timers::callback::Timeout;
use leptos::{logging::warn, prelude::*};
use wasm_bindgen::{closure::Closure, JsCast};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use super::{ConnectionState, Views};
use crate::{
    protocol::{Action, ClientEvent, ClientFrame, RelayedFrame, RoomName, ServerFrame},
    status::{OpponentStatus, TypingThrottle},
};

/// One battle page's connection to its room. Cheap to clone; every clone is
/// the same connection.
#[derive(Clone)]
pub struct BattleClient {
    inner: Rc<Inner>,
}

/// A socket event name and the handler registered for it.
type Listener = (&'static str, Closure<dyn FnMut(Event)>);

struct Inner {
    views: Views,
    client_id: String,
    socket: WebSocket,
    /// The member id the server gave us, from its welcome frame.
    me: RefCell<Option<String>>,
    opponent: RefCell<OpponentStatus>,
    throttle: RefCell<TypingThrottle>,
    /// The one pending wake-up; replacing it cancels the previous one.
    wake: RefCell<Option<Timeout>>,
    /// Keeps the socket's event handlers alive as long as the client.
    handlers: RefCell<Vec<Listener>>,
}

impl BattleClient {
    /// Connects to `room` and starts feeding `views`; `None` (and shown as
    /// disconnected) if the browser refuses to open the socket.
    pub fn start(room: RoomName, views: Views) -> Option<Self> {
        let socket = match WebSocket::new(&socket_url(&room)) {
            Ok(socket) => socket,
            Err(error) => {
                warn!("cannot open the battle socket: {error:?}");
                views.connection.set(ConnectionState::Disconnected);
                return None;
            }
        };
        let inner = Rc::new(Inner {
            views,
            client_id: random_id(),
            socket,
            me: RefCell::new(None),
            opponent: RefCell::new(OpponentStatus::default()),
            throttle: RefCell::new(TypingThrottle::default()),
            wake: RefCell::new(None),
            handlers: RefCell::new(Vec::new()),
        });
        inner.listen("open", |inner, _| {
            inner.views.connection.set(ConnectionState::Live);
        });
        inner.listen("close", |inner, event| {
            let code = event.dyn_ref::<CloseEvent>().map(CloseEvent::code);
            warn!("battle socket closed (code {code:?})");
            inner.views.connection.set(ConnectionState::Disconnected);
        });
        inner.listen("message", |inner, event| {
            if let Some(text) = event
                .dyn_ref::<MessageEvent>()
                .and_then(|message| message.data().as_string())
            {
                inner.receive(&text);
            }
        });
        Some(Self { inner })
    }

    /// The player typed: sends a typing ping unless one went out less than
    /// 800 ms ago.
    pub fn typed(&self) {
        if self.inner.throttle.borrow_mut().handle_keystroke(now()) {
            self.inner.send(ClientEvent::Typing);
        }
    }

    /// The player did `action`.
    pub fn act(&self, action: Action) {
        self.inner.send(ClientEvent::Action(action));
    }

    /// Closes the socket and cancels the timer (the page is going away).
    pub fn stop(&self) {
        self.inner.wake.borrow_mut().take();
        for (kind, handler) in self.inner.handlers.borrow_mut().drain(..) {
            // Removed before the closure is freed, so the socket never calls it.
            let _ = self
                .inner
                .socket
                .remove_event_listener_with_callback(kind, handler.as_ref().unchecked_ref());
        }
        let _ = self.inner.socket.close();
    }
}

impl Inner {
    fn listen(self: &Rc<Self>, kind: &'static str, handle: impl Fn(&Rc<Inner>, &Event) + 'static) {
        let weak: Weak<Inner> = Rc::downgrade(self);
        let closure = Closure::<dyn FnMut(Event)>::new(move |event: Event| {
            if let Some(inner) = weak.upgrade() {
                handle(&inner, &event);
            }
        });
        if let Err(error) = self
            .socket
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
        {
            warn!("cannot listen to {kind}: {error:?}");
        }
        self.handlers.borrow_mut().push((kind, closure));
    }

    fn send(&self, event: ClientEvent) {
        if self.socket.ready_state() != WebSocket::OPEN {
            return;
        }
        let frame = ClientFrame::new(event)
            .with_client_id(self.client_id.clone())
            .with_ts(js_sys::Date::now() as u64);
        if let Err(error) = self.socket.send_with_str(&frame.to_json()) {
            warn!("frame not sent: {error:?}");
        }
    }

    fn receive(self: &Rc<Self>, text: &str) {
        match ServerFrame::parse(text) {
            Some(ServerFrame::Welcome { you, .. }) => *self.me.borrow_mut() = Some(you),
            Some(ServerFrame::Relayed(relayed)) if !self.is_own(&relayed) => {
                let mut opponent = self.opponent.borrow_mut();
                match relayed.frame.event {
                    ClientEvent::Typing => opponent.handle_typing(now()),
                    ClientEvent::Action(action) => opponent.handle_action(action),
                }
                drop(opponent);
                self.refresh();
            }
            Some(ServerFrame::Error { code, message }) => {
                warn!("the server refused a frame: {code}: {message}");
            }
            _ => {}
        }
    }

    /// Our own frames come back from the room: recognised by the member id
    /// from the welcome frame, or by our `clientId` before it arrived.
    fn is_own(&self, relayed: &RelayedFrame) -> bool {
        match &*self.me.borrow() {
            Some(me) => relayed.from == *me,
            None => relayed.frame.client_id.as_deref() == Some(self.client_id.as_str()),
        }
    }

    /// Shows the opponent's status now and sets the one timer for its next
    /// change.
    fn refresh(self: &Rc<Self>) {
        let now = now();
        let opponent = self.opponent.borrow();
        let status = opponent.status(now);
        if self.views.opponent.get_untracked() != status {
            self.views.opponent.set(status);
        }
        let wake = opponent.poll_timeout(now).map(|at| {
            let weak = Rc::downgrade(self);
            let delay = u32::try_from(at - now).unwrap_or(u32::MAX);
            Timeout::new(delay, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.refresh();
                }
            })
        });
        drop(opponent);
        *self.wake.borrow_mut() = wake;
    }
}

/// The room's socket on the server that served this page.
fn socket_url(room: &RoomName) -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/ws/battle/{room}/")
}

/// Milliseconds on the page's monotonic clock.
fn now() -> u64 {
    window()
        .performance()
        .map_or(0.0, |performance| performance.now()) as u64
}

/// A random id for this tab, sent as `clientId`.
fn random_id() -> String {
    (0..4)
        .map(|_| format!("{:04x}", (js_sys::Math::random() * 65536.0) as u32))
        .collect()
}

/// Copies `text` to the clipboard, then calls `done` with whether it worked.
pub fn copy_to_clipboard(text: String, done: impl FnOnce(bool) + 'static) {
    let promise = window().navigator().clipboard().write_text(&text);
    leptos::task::spawn_local(async move {
        done(wasm_bindgen_futures::JsFuture::from(promise).await.is_ok());
    });
}
