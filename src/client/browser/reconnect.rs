//! When and how the page connects again: after a close (the server's hint,
//! or the backoff), after asking why a socket did not open (busy, or the
//! token), at once when the browser is back online, and when the server
//! went silent.

use std::rc::Rc;

use gloo_timers::callback::Timeout;
use leptos::{logging::warn, prelude::*};
use wasm_bindgen::JsCast;

use super::{Inner, HEARTBEAT_SLACK_MS};
use crate::{
    client::{after_admission_check, after_close, AfterCheck, AfterClose, ConnectionState},
    protocol::Close,
};

impl Inner {
    /// The socket closed with `code` and `reason`.
    pub(super) fn closed(self: &Rc<Self>, code: u16, reason: &str) {
        self.drop_socket();
        self.watchdog.borrow_mut().take();
        match after_close(code, reason, self.opened.get()) {
            AfterClose::Stop(state) => self.views.connection.set(state),
            AfterClose::AskWhy => self.check_admission(),
            AfterClose::Reconnect { after_ms } => self.reconnect_later(after_ms),
        }
    }

    /// Asks the server why the socket did not open: busy (then waits as
    /// long as it says, showing so), the token (then stops and says so), or
    /// neither (then reconnects as usual).
    fn check_admission(self: &Rc<Self>) {
        self.views.connection.set(ConnectionState::Reconnecting);
        let promise = window().fetch_with_str(&self.admission_check);
        let weak = Rc::downgrade(self);
        leptos::task::spawn_local(async move {
            let answer = wasm_bindgen_futures::JsFuture::from(promise)
                .await
                .ok()
                .and_then(|response| response.dyn_into::<web_sys::Response>().ok());
            let status = answer.as_ref().map_or(0, web_sys::Response::status);
            let retry_after =
                answer.and_then(|response| response.headers().get("retry-after").ok().flatten());
            let Some(inner) = weak.upgrade() else {
                return;
            };
            match after_admission_check(status, retry_after.as_deref(), js_sys::Math::random()) {
                AfterCheck::TokenRefused => {
                    inner.views.connection.set(ConnectionState::TokenRefused)
                }
                AfterCheck::Busy { after_ms } => {
                    inner.connect_after(after_ms, ConnectionState::Busy)
                }
                AfterCheck::Reconnect => inner.reconnect_later(None),
            }
        });
    }

    /// Connects again after `after_ms` if the server said when, else after
    /// a jittered, growing delay.
    pub(super) fn reconnect_later(self: &Rc<Self>, after_ms: Option<u64>) {
        let delay = after_ms
            .unwrap_or_else(|| self.backoff.borrow_mut().next_delay(js_sys::Math::random()));
        self.connect_after(delay, ConnectionState::Reconnecting);
    }

    /// Shows `state`, then connects in `delay_ms`.
    fn connect_after(self: &Rc<Self>, delay_ms: u64, state: ConnectionState) {
        if self.stopped.get() {
            return;
        }
        self.views.connection.set(state);
        let weak = Rc::downgrade(self);
        let timer = Timeout::new(u32::try_from(delay_ms).unwrap_or(u32::MAX), move || {
            if let Some(inner) = weak.upgrade() {
                inner.connect();
            }
        });
        *self.retry.borrow_mut() = Some(timer);
    }

    /// The browser came back online or the tab became visible: a pending
    /// reconnection happens now instead of after its wait.
    pub(super) fn retry_now(self: &Rc<Self>) {
        let visible = document().visibility_state() == web_sys::VisibilityState::Visible;
        if visible && self.retry.borrow().is_some() {
            self.connect();
        }
    }

    /// (Re)arms the watchdog: if nothing arrives for a heartbeat period and
    /// some slack, the socket is dead even if the browser has not noticed.
    pub(super) fn watch(self: &Rc<Self>) {
        let limit = self.heartbeat_ms.get() + HEARTBEAT_SLACK_MS;
        let weak = Rc::downgrade(self);
        let timer = Timeout::new(u32::try_from(limit).unwrap_or(u32::MAX), move || {
            if let Some(inner) = weak.upgrade() {
                warn!("no heartbeat from the server: reconnecting");
                inner.closed(Close::Shutdown.code(), "");
            }
        });
        *self.watchdog.borrow_mut() = Some(timer);
    }
}
