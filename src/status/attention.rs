//! The player's own tab: when it counts as away (hidden for more than
//! [`AWAY_AFTER_MS`]), and what its title says while hidden (the moves
//! the player has not seen yet).
//!
//! Pure, like the rest of `status`: the page passes in visibility changes
//! and the time, and asks when to wake up.

use super::notice::Notice;

/// A hidden tab counts as away after this long, in ms: a quick look at
/// another tab is not worth telling the opponent.
pub const AWAY_AFTER_MS: u64 = 2_000;

/// The product's name, at the end of every title.
pub const APP_TITLE: &str = "battle-status";

/// Whether the room should see this tab as away, and when to tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnAway {
    /// Since when the tab is hidden.
    hidden_since: Option<u64>,
    /// The room was told the tab is away.
    told: bool,
}

impl OwnAway {
    /// The tab was hidden (`true`) or shown at `now`: the `away` frame to
    /// send now, if any.
    pub fn handle_visibility(&mut self, hidden: bool, now: u64) -> Option<bool> {
        if hidden {
            self.hidden_since.get_or_insert(now);
            return None;
        }
        self.hidden_since = None;
        std::mem::take(&mut self.told).then_some(false)
    }

    /// The time is `now`: `Some(true)` once the tab has been hidden long
    /// enough and the room was not told yet.
    pub fn handle_timeout(&mut self, now: u64) -> Option<bool> {
        let due = self.poll_timeout().is_some_and(|at| at <= now);
        if due {
            self.told = true;
        }
        due.then_some(true)
    }

    /// A new connection (the server forgets away on a drop): told again
    /// at the next timeout, which is due at once if the tab is long hidden.
    pub fn handle_reconnected(&mut self) {
        self.told = false;
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<u64> {
        match (self.hidden_since, self.told) {
            (Some(since), false) => Some(since + AWAY_AFTER_MS),
            _ => None,
        }
    }
}

/// The title of a tab: while hidden, the moves it has not shown yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attention {
    hidden: bool,
    unseen: u32,
    last: Option<String>,
}

impl Attention {
    /// The tab was hidden or shown: shown, everything is seen.
    pub fn handle_visibility(&mut self, hidden: bool) {
        self.hidden = hidden;
        if !hidden {
            self.unseen = 0;
            self.last = None;
        }
    }

    /// Something happened in the room: counted while hidden if it has a
    /// headline. Returns the verdict to notify, if the tab is hidden.
    pub fn handle_notice<'a>(&mut self, notice: &'a Notice) -> Option<&'a str> {
        if !self.hidden {
            return None;
        }
        if let Some(headline) = &notice.headline {
            self.unseen += 1;
            self.last = Some(headline.clone());
        }
        notice.verdict.as_deref()
    }

    /// The title to show: `page` while nothing is unseen, else "(2) Ada
    /// submitted · battle-status".
    pub fn title(&self, page: &str) -> String {
        match &self.last {
            Some(last) => format!("({}) {last} · {APP_TITLE}", self.unseen),
            None => page.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Action, PresenceEvent};

    #[test]
    fn a_tab_hidden_for_more_than_2_s_is_away_until_it_is_shown() {
        let mut away = OwnAway::default();
        assert_eq!(away.handle_visibility(true, 10_000), None);
        assert_eq!(away.poll_timeout(), Some(12_000));
        assert_eq!(away.handle_timeout(11_999), None);
        assert_eq!(away.handle_timeout(12_000), Some(true));
        assert_eq!(away.poll_timeout(), None, "told once");
        assert_eq!(away.handle_timeout(20_000), None);
        assert_eq!(away.handle_visibility(false, 30_000), Some(false));
        assert_eq!(away.handle_visibility(false, 31_000), None);
    }

    #[test]
    fn a_quick_look_at_another_tab_tells_nobody() {
        let mut away = OwnAway::default();
        away.handle_visibility(true, 0);
        assert_eq!(away.handle_visibility(false, 1_500), None);
        assert_eq!(away.poll_timeout(), None);
        away.handle_visibility(true, 5_000);
        away.handle_visibility(true, 6_000);
        assert_eq!(away.poll_timeout(), Some(7_000), "hidden since the first");
    }

    #[test]
    fn a_reconnection_tells_the_room_again_at_once_if_the_tab_is_long_hidden() {
        let mut away = OwnAway::default();
        away.handle_visibility(true, 0);
        away.handle_timeout(2_000);
        away.handle_reconnected();
        assert_eq!(away.handle_timeout(60_000), Some(true));
    }

    #[test]
    fn a_hidden_tab_counts_unseen_moves_in_its_title_and_resets_when_shown() {
        let mut attention = Attention::default();
        let submitted = Notice::action("Ada", Action::Submitted);
        assert_eq!(attention.handle_notice(&submitted), None);
        assert_eq!(attention.title("Battle r1"), "Battle r1", "visible");
        attention.handle_visibility(true);
        attention.handle_notice(&Notice::action("Ada", Action::Running));
        attention.handle_notice(&Notice::presence("Ada", PresenceEvent::Leave));
        assert_eq!(
            attention.title("Battle r1"),
            "(1) Ada is running code · battle-status"
        );
        attention.handle_notice(&submitted);
        assert_eq!(attention.title("x"), "(2) Ada submitted · battle-status");
        let verdict = Notice::action("Ada", Action::Accepted);
        assert_eq!(attention.handle_notice(&verdict), Some("Ada: Accepted"));
        attention.handle_visibility(false);
        assert_eq!(attention.title("Battle r1"), "Battle r1");
    }
}
