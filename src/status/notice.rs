//! What a change in the room is worth telling the player, in words: the
//! line a screen reader announces, the headline a hidden tab's title shows,
//! and the text of a verdict's notification; and how long someone is away.

use super::action_label;
use crate::protocol::{Action, PresenceEvent};

/// What to tell the player about one change in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Announced politely to screen readers ("Ada: Submitted code").
    pub announce: String,
    /// Shown in the title while the player's tab is hidden ("Ada
    /// submitted"): moves that matter, not presence.
    pub headline: Option<String>,
    /// A verdict, for a browser notification the player opted in to.
    pub verdict: Option<String>,
}

impl Notice {
    fn said(announce: String) -> Self {
        Self {
            announce,
            headline: None,
            verdict: None,
        }
    }

    /// `who` joined, dropped, came back or left.
    pub fn presence(who: &str, event: PresenceEvent) -> Self {
        Self::said(match event {
            PresenceEvent::Join => format!("{who} joined"),
            PresenceEvent::Reconnecting => format!("{who} is reconnecting"),
            PresenceEvent::Resume => format!("{who} is back"),
            PresenceEvent::Leave => format!("{who} left"),
        })
    }

    /// Another player, `who`, did `action` (or got it as a verdict).
    pub fn action(who: &str, action: Action) -> Self {
        let label = action_label(action);
        let headline = match action {
            Action::Running => format!("{who} is running code"),
            Action::Submitted => format!("{who} submitted"),
            Action::RunComplete => format!("{who} finished a run"),
            _ => format!("{who}: {label}"),
        };
        let said = format!("{who}: {label}");
        Self {
            verdict: is_verdict(action).then(|| said.clone()),
            announce: said,
            headline: Some(headline),
        }
    }

    /// The judge's verdict on this player's own submission.
    pub fn own_verdict(action: Action) -> Self {
        let said = format!("Your verdict: {}", action_label(action));
        Self {
            announce: said.clone(),
            headline: Some(said.clone()),
            verdict: Some(said),
        }
    }

    /// `who` switched away from the battle's tab, or came back to it.
    pub fn away(who: &str, away: bool) -> Self {
        Self::said(if away {
            format!("{who} is away")
        } else {
            format!("{who} is back")
        })
    }

    /// The player once called `was` is now called `now`.
    pub fn renamed(was: &str, now: &str) -> Self {
        Self::said(format!("{was} is now called {now}"))
    }
}

/// True for the judge's answers, not the player's own moves.
fn is_verdict(action: Action) -> bool {
    !matches!(
        action,
        Action::Running | Action::Submitted | Action::RunComplete
    )
}

/// "Away for 40 s", then "Away for 3 min", after `ms` away.
pub fn away_label(ms: u64) -> String {
    let secs = ms / 1_000;
    if secs < 60 {
        format!("Away for {secs} s")
    } else {
        format!("Away for {} min", secs / 60)
    }
}

/// How long after `ms` away the label next changes.
pub fn next_away_change(ms: u64) -> u64 {
    let step = if ms < 60_000 { 1_000 } else { 60_000 };
    ms / step * step + step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn away_counts_seconds_then_minutes_and_wakes_the_page_only_when_it_changes() {
        assert_eq!(away_label(0), "Away for 0 s");
        assert_eq!(away_label(40_999), "Away for 40 s");
        assert_eq!(away_label(60_000), "Away for 1 min");
        assert_eq!(away_label(185_000), "Away for 3 min");
        assert_eq!(next_away_change(0), 1_000);
        assert_eq!(next_away_change(40_500), 41_000);
        assert_eq!(next_away_change(59_999), 60_000);
        assert_eq!(next_away_change(60_000), 120_000);
        assert_eq!(next_away_change(185_000), 240_000);
    }

    #[test]
    fn moves_make_headlines_and_only_verdicts_make_notifications() {
        let submitted = Notice::action("Ada", Action::Submitted);
        assert_eq!(submitted.announce, "Ada: Submitted code");
        assert_eq!(submitted.headline.as_deref(), Some("Ada submitted"));
        assert_eq!(submitted.verdict, None);
        let running = Notice::action("Your opponent", Action::Running);
        assert_eq!(
            running.headline.as_deref(),
            Some("Your opponent is running code")
        );
        let failed = Notice::action("Ada", Action::FailedTest(3));
        assert_eq!(failed.verdict.as_deref(), Some("Ada: Failed on test 3"));
        let mine = Notice::own_verdict(Action::Accepted);
        assert_eq!(mine.verdict.as_deref(), Some("Your verdict: Accepted"));
    }

    #[test]
    fn presence_away_and_names_are_said_but_never_make_headlines() {
        for notice in [
            Notice::presence("Ada", PresenceEvent::Leave),
            Notice::away("Ada", true),
            Notice::renamed("Ada", "Grace"),
        ] {
            assert_eq!(notice.headline, None, "{notice:?}");
            assert_eq!(notice.verdict, None, "{notice:?}");
        }
        assert_eq!(Notice::away("Ada", false).announce, "Ada is back");
        assert_eq!(
            Notice::renamed("Your opponent", "Ada").announce,
            "Your opponent is now called Ada"
        );
    }
}
