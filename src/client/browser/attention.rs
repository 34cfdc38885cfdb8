//! The player's attention: the tab hidden (away, told to the room after
//! a while), the title of a hidden tab counting the moves it has not shown,
//! the screen reader's announcements, verdict notifications, and the
//! player's name as the room has it.

use std::rc::Rc;

use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use super::{page::now, Inner};
use crate::{
    client::Notifications,
    protocol::ClientEvent,
    status::{Notice, APP_TITLE},
};

/// Whether the browser can notify, and what the player chose.
pub fn notifications() -> Notifications {
    if !has_notifications() {
        return Notifications::Unavailable;
    }
    match Notification::permission() {
        NotificationPermission::Granted => Notifications::On,
        NotificationPermission::Denied => Notifications::Blocked,
        _ => Notifications::Off,
    }
}

/// Calling into `Notification` where the browser has none would throw.
fn has_notifications() -> bool {
    js_sys::Reflect::has(&window(), &"Notification".into()).unwrap_or(false)
}

impl Inner {
    /// The tab was hidden or shown (or the page just started).
    pub(super) fn visibility_changed(self: &Rc<Self>) {
        let hidden = document().hidden();
        self.attention.borrow_mut().handle_visibility(hidden);
        if !hidden {
            if let Some(title) = self.page_title.borrow_mut().take() {
                document().set_title(&title);
            }
        }
        let told = self.own_away.borrow_mut().handle_visibility(hidden, now());
        if let Some(away) = told {
            self.send(ClientEvent::Away(away));
        }
        self.arm_away();
    }

    /// Sets the timer that tells the room this hidden tab is away.
    fn arm_away(self: &Rc<Self>) {
        let due = self.own_away.borrow().poll_timeout();
        let timer = due.map(|at| {
            let weak = Rc::downgrade(self);
            let delay = u32::try_from(at.saturating_sub(now())).unwrap_or(u32::MAX);
            Timeout::new(delay, move || {
                if let Some(inner) = weak.upgrade() {
                    if let Some(away) = inner.own_away.borrow_mut().handle_timeout(now()) {
                        inner.send(ClientEvent::Away(away));
                    }
                }
            })
        });
        *self.away_timer.borrow_mut() = timer;
    }

    /// A welcome: the room forgot this tab's away state if the socket had
    /// dropped, and says which name it has.
    pub(super) fn welcomed(self: &Rc<Self>, name_locked: bool) {
        self.own_away.borrow_mut().handle_reconnected();
        self.arm_away();
        let views = self.views;
        views.name_locked.set(name_locked);
        if let Some(name) = self.room.borrow().own_name() {
            views.name.set(name.as_str().to_owned());
            *self.name.borrow_mut() = Some(name.clone());
        }
    }

    /// Tells the player about `notice`: announced, counted in the title of
    /// a hidden tab, and notified if it is a verdict they asked to hear of.
    pub(super) fn tell(&self, notice: Option<Notice>) {
        let Some(notice) = notice else {
            return;
        };
        self.views.announcement.set(notice.announce.clone());
        let mut attention = self.attention.borrow_mut();
        let verdict = attention.handle_notice(&notice);
        if notice.headline.is_some() && document().hidden() {
            let mut saved = self.page_title.borrow_mut();
            let page = saved.get_or_insert_with(|| document().title());
            document().set_title(&attention.title(page));
        }
        if let Some(verdict) = verdict {
            notify(verdict);
        }
    }

    /// The server refused a frame: a name it would not take says why.
    pub(super) fn refused(&self, code: &str, message: &str) {
        match code {
            "name_locked" => self.views.name_locked.set(true),
            "invalid_name" => self.views.name_error.set(Some(message.to_owned())),
            _ => {}
        }
    }

    /// Asks the browser's permission to notify verdicts.
    pub(super) fn ask_for_notifications(self: &Rc<Self>) {
        if !has_notifications() {
            return;
        }
        let Ok(promise) = Notification::request_permission() else {
            return;
        };
        let views = self.views;
        leptos::task::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            views.notifications.set(notifications());
        });
    }
}

/// A browser notification of `verdict`, if the player allowed them.
fn notify(verdict: &str) {
    if notifications() != Notifications::On {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(verdict);
    options.set_tag("battle-status-verdict");
    let _ = Notification::new_with_options(APP_TITLE, &options);
}
