//! The ids of this instance's own frames, so that each reaches its members
//! once whichever way comes first: back from Redis, or directly when a
//! publish timed out.

use std::collections::{HashSet, VecDeque};

/// Frames of this instance remembered, to recognise a late copy.
const RECENT_FRAMES: usize = 4096;

/// The numbers of this instance's frames (the counter in each id) that
/// reached its own members, either back from Redis or, when a publish
/// failed, directly: each is delivered once, whichever way comes first.
#[derive(Debug, Default)]
pub(super) struct RecentFrames {
    numbers: HashSet<u64>,
    order: VecDeque<u64>,
}

impl RecentFrames {
    /// `true` the first time frame `number` is seen (and remembers it).
    pub(super) fn first(&mut self, number: u64) -> bool {
        if !self.numbers.insert(number) {
            return false;
        }
        if self.order.len() == RECENT_FRAMES {
            if let Some(old) = self.order.pop_front() {
                self.numbers.remove(&old);
            }
        }
        self.order.push_back(number);
        true
    }
}

/// The id of frame `number` of instance `node`: `<node>.<number>`.
pub(super) fn frame_id(node: &str, number: u64) -> String {
    format!("{node}.{number}")
}

/// The number of frame `id` if instance `node` gave it ([`frame_id`]).
pub(super) fn frame_number(node: &str, id: &str) -> Option<u64> {
    id.strip_prefix(node)?.strip_prefix('.')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_knows_its_own_frames_by_their_ids() {
        assert_eq!(frame_number("n1", &frame_id("n1", 42)), Some(42));
        assert_eq!(frame_number("n1", &frame_id("n2", 42)), None);
        assert_eq!(frame_number("n1", &frame_id("n1x", 42)), None);
        assert_eq!(frame_number("n1", "n1.x"), None);
    }

    #[test]
    fn a_frame_counts_once_among_the_most_recent() {
        let mut recent = RecentFrames::default();
        assert!(recent.first(7));
        assert!(!recent.first(7), "a late copy");
        for number in 100..100 + RECENT_FRAMES as u64 {
            assert!(recent.first(number));
        }
        assert!(recent.first(7), "forgotten after as many newer frames");
        assert!(!recent.first(100 + RECENT_FRAMES as u64 - 1));
    }
}
