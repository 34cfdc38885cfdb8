//! The ids of this instance's own frames, so that each reaches its members
//! once whichever way comes first: back from Redis, or directly when a
//! publish timed out.

use std::collections::{HashSet, VecDeque};

/// Frame ids of this instance remembered, to recognise a late copy.
const RECENT_FRAMES: usize = 4096;

/// The ids of this instance's frames that reached its own members, either
/// back from Redis or, when a publish failed, directly: each is delivered
/// once, whichever way comes first.
#[derive(Debug, Default)]
pub(super) struct RecentFrames {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentFrames {
    /// `true` the first time `id` is seen (and remembers it).
    pub(super) fn first(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == RECENT_FRAMES {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}
