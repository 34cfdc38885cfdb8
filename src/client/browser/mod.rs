//! The browser build of the client API.

mod attention;
mod json;
mod listeners;
mod page;
mod receive;
mod reconnect;
mod socket;

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
};

use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use web_sys::Event;

pub use self::page::{copy_to_clipboard, location, remember_name, remembered_name};
use self::{
    listeners::{listen, Listeners},
    page::{keep_token, now, random_id, role_name, socket_url, strip_from_address},
    socket::Socket,
};
use super::{take_name, ConnectionState, Views};
use crate::{
    backoff::Backoff,
    protocol::{Action, ClientEvent, Close, PlayerName, Role, RoomName},
    status::{Attention, OwnAway, RoomView, Timeline, TypingThrottle},
};

/// How long past a missed heartbeat the page waits before it counts the
/// socket as dead and reconnects.
const HEARTBEAT_SLACK_MS: u64 = 10_000;
/// Heartbeat period assumed until the server's welcome says otherwise.
const DEFAULT_HEARTBEAT_MS: u64 = 15_000;
/// How many of the opponent's last moves a player's page lists.
const OPPONENT_MOVES: usize = 5;

/// Sets `signal` to `value` unless it holds that already (no needless
/// re-render, no needless announcement).
fn set_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    if signal.with_untracked(|current| *current != value) {
        signal.set(value);
    }
}

/// One battle page's connection to its room. Cheap to clone; every clone is
/// the same connection.
#[derive(Clone)]
pub struct BattleClient {
    inner: Rc<Inner>,
}

struct Inner {
    url: String,
    /// Where to ask why a socket did not open (busy, or the token).
    admission_check: String,
    /// Whether the current socket opened.
    opened: Cell<bool>,
    /// Numbers the connection attempts: a socket's reader stops once its
    /// attempt is no longer the current one.
    attempts: Cell<u32>,
    views: Views,
    client_id: String,
    socket: RefCell<Option<Socket>>,
    room: RefCell<RoomView>,
    timeline: RefCell<Timeline>,
    /// The highest `seq` seen: a reconnection asks for what came after.
    last_seq: Cell<u64>,
    throttle: RefCell<TypingThrottle>,
    backoff: RefCell<Backoff>,
    heartbeat_ms: Cell<u64>,
    /// The next status change.
    wake: RefCell<Option<Timeout>>,
    /// The next reconnection attempt, while one is pending.
    retry: RefCell<Option<Timeout>>,
    /// Fires if the server goes silent for too long.
    watchdog: RefCell<Option<Timeout>>,
    /// `online` and `visibilitychange`: retry at once when they fire.
    page_listeners: RefCell<Vec<Listeners>>,
    stopped: Cell<bool>,
    /// The name this page asks the room for.
    name: RefCell<Option<PlayerName>>,
    /// Whether the room was told this tab is away, and when to tell it.
    own_away: RefCell<OwnAway>,
    /// Fires when the hidden tab counts as away.
    away_timer: RefCell<Option<Timeout>>,
    /// The moves this hidden tab has not shown yet, for its title.
    attention: RefCell<Attention>,
    /// The page's own title, while the hidden tab's title tells moves.
    page_title: RefCell<Option<String>>,
}

impl BattleClient {
    /// Connects to `room` as `role` (with the host application's join
    /// `token`, if any) and keeps feeding `views`, reconnecting whenever the
    /// socket drops, until [`stop`](Self::stop). A token from the address
    /// bar is kept for this tab only and taken out of the address bar. The
    /// player's `name` from the link is remembered (and taken out of the
    /// address bar too); without one, the name remembered before is used.
    pub fn start(
        room: RoomName,
        role: Role,
        token: Option<String>,
        name: Option<PlayerName>,
        views: Views,
    ) -> Option<Self> {
        let token = keep_token(&room, role, token);
        // A name from the link is remembered, then taken out of the address
        // bar: a reload keeps a later rename, and a copied link does not
        // hand the name on.
        if let Some(name) = &name {
            remember_name(name);
            strip_from_address("name");
        }
        let name = name.or_else(remembered_name);
        views.name.set(
            name.as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        );
        views.notifications.set(attention::notifications());
        let admission_check = format!(
            "/ws/battle/{room}/admission?role={}{}",
            role_name(role),
            token
                .as_deref()
                .map(|token| format!("&token={token}"))
                .unwrap_or_default()
        );
        let inner = Rc::new(Inner {
            url: socket_url(&room, role, token.as_deref()),
            admission_check,
            opened: Cell::new(false),
            attempts: Cell::new(0),
            views,
            client_id: random_id(),
            socket: RefCell::new(None),
            room: RefCell::new(RoomView::default()),
            timeline: RefCell::new(Timeline::default()),
            last_seq: Cell::new(0),
            throttle: RefCell::new(TypingThrottle::default()),
            backoff: RefCell::new(Backoff::default()),
            heartbeat_ms: Cell::new(DEFAULT_HEARTBEAT_MS),
            wake: RefCell::new(None),
            retry: RefCell::new(None),
            watchdog: RefCell::new(None),
            page_listeners: RefCell::new(Vec::new()),
            stopped: Cell::new(false),
            name: RefCell::new(name),
            own_away: RefCell::new(OwnAway::default()),
            away_timer: RefCell::new(None),
            attention: RefCell::new(Attention::default()),
            page_title: RefCell::new(None),
        });
        let retry_now = |inner: &Rc<Inner>, _: &Event| inner.retry_now();
        let visibility = |inner: &Rc<Inner>, _: &Event| {
            inner.retry_now();
            inner.visibility_changed();
        };
        let listeners = vec![
            listen(&inner, window().into(), &[("online", retry_now)]),
            listen(
                &inner,
                document().into(),
                &[("visibilitychange", visibility)],
            ),
        ];
        *inner.page_listeners.borrow_mut() = listeners;
        inner.visibility_changed();
        inner.connect();
        Some(Self { inner })
    }

    /// The player typed `typed` as their name: taken (remembered, and sent
    /// to the room at once) if it follows the rules, else refused with the
    /// reason shown.
    pub fn rename(&self, typed: &str) {
        let views = self.inner.views;
        match take_name(typed) {
            Ok(name) => {
                views.name_error.set(None);
                views.name.set(name.as_str().to_owned());
                *self.inner.name.borrow_mut() = Some(name.clone());
                self.inner.send(ClientEvent::Name(name));
            }
            Err(error) => views.name_error.set(Some(error.to_string())),
        }
    }

    /// The player asked for a notification of each verdict while the tab
    /// is hidden: asks the browser's permission.
    pub fn enable_notifications(&self) {
        self.inner.ask_for_notifications();
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

    /// Leaves the battle (the page is going away): closes the socket with
    /// 1000, so the seat is freed at once, and cancels every timer.
    pub fn stop(&self) {
        let inner = &self.inner;
        inner.stopped.set(true);
        inner.page_listeners.borrow_mut().clear();
        for timer in [
            &inner.wake,
            &inner.retry,
            &inner.watchdog,
            &inner.away_timer,
        ] {
            timer.borrow_mut().take();
        }
        if let Some(socket) = inner.socket.borrow_mut().take() {
            socket.close(Close::Normal);
        }
    }
}

impl Inner {
    /// Shows the statuses now and sets the one timer for their next change.
    fn refresh(self: &Rc<Self>) {
        let now = now();
        let room = self.room.borrow();
        let opponent = room.opponent(now);
        if self.views.opponent.get_untracked() != opponent {
            self.views.opponent.set(opponent);
        }
        let players = room.players(now);
        if self.views.players.get_untracked() != players {
            self.views.players.set(players);
        }
        let own_action = room.own_action();
        if self.views.own_action.get_untracked() != own_action {
            self.views.own_action.set(own_action);
        }
        set_if_changed(self.views.opponent_badge, room.opponent_badge(now));
        set_if_changed(self.views.player_badges, room.player_badges(now));
        let wake = room.poll_timeout(now).map(|at| {
            let weak = Rc::downgrade(self);
            let delay = u32::try_from(at - now).unwrap_or(u32::MAX);
            Timeout::new(delay, move || {
                if let Some(inner) = weak.upgrade() {
                    inner.refresh();
                }
            })
        });
        drop(room);
        *self.wake.borrow_mut() = wake;
    }
}
