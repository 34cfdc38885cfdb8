//! Many deadlines, one wake-up: a table of deadlines by key (in the manner
//! of quinn-proto's `TimerTable`), and the one task that sleeps until the
//! earliest and hands out the keys that are due.
//!
//! Grace periods run from here (one table per hub, and one per Redis
//! instance for the grace periods it watches), not from a task each.

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

use super::clock::Clock;

/// Deadlines (milliseconds on the hub's clock) by key, at most one per key:
/// the earliest asked for wins. Pure: time is passed in.
#[derive(Debug)]
pub struct DeadlineTable<K> {
    by_key: HashMap<K, u64>,
    by_time: BTreeSet<(u64, K)>,
}

impl<K> Default for DeadlineTable<K> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> DeadlineTable<K> {
    /// Asks to be woken for `key` at `at`; a key already waiting keeps the
    /// earlier of its deadline and `at`.
    pub fn insert(&mut self, key: K, at: u64) {
        if let Some(&old) = self.by_key.get(&key) {
            if old <= at {
                return;
            }
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_key.insert(key.clone(), at);
        self.by_time.insert((at, key));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes out the keys whose deadline is `now` or earlier, earliest first.
    pub fn take_due(&mut self, now: u64) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            let (_, key) = self.by_time.pop_first().expect("checked above");
            self.by_key.remove(&key);
            due.push(key);
        }
        due
    }

    /// How many keys wait.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True if no key waits.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A [`DeadlineTable`] shared between those who set deadlines and the one
/// task that waits for them ([`Timers::run`]).
#[derive(Debug)]
pub struct Timers<K> {
    // A leaf lock: nothing else is locked, and nothing awaited, while held.
    table: Mutex<DeadlineTable<K>>,
    changed: Notify,
    clock: Clock,
}

impl<K: Clone + Eq + Hash + Ord + Send + 'static> Timers<K> {
    /// An empty table on `clock`.
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(DeadlineTable::default()),
            changed: Notify::new(),
            clock,
        })
    }

    /// Asks for `key` to be handed out at `at` (or earlier, if it already
    /// waits for an earlier time).
    pub fn insert(&self, key: K, at: u64) {
        self.lock().insert(key, at);
        self.changed.notify_one();
    }

    /// How many keys wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if no key waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Sleeps until the earliest deadline, then calls `due` with each key
    /// whose time has come (in deadline order), forever. `due` returns the
    /// key's next deadline, if it needs one. Runs in its owner's task, so it
    /// ends when that task is aborted or the future dropped.
    pub async fn run<F, Fut>(&self, mut due: F)
    where
        F: FnMut(K, u64) -> Fut,
        Fut: Future<Output = Option<u64>>,
    {
        loop {
            let changed = self.changed.notified();
            let next = self.lock().next_deadline();
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(self.clock.instant(at)) => {}
                        () = changed => continue,
                    }
                }
                None => {
                    changed.await;
                    continue;
                }
            }
            let now = self.clock.now();
            let keys = self.lock().take_due(now);
            for key in keys {
                if let Some(at) = due(key.clone(), now).await {
                    self.lock().insert(key, at);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeadlineTable<K>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_earliest_deadline_of_a_key_wins_and_due_keys_come_out_in_order() {
        let mut table = DeadlineTable::default();
        table.insert("b", 300);
        table.insert("a", 200);
        table.insert("b", 100);
        table.insert("a", 900);
        assert_eq!(table.len(), 2);
        assert_eq!(table.next_deadline(), Some(100));
        assert_eq!(table.take_due(99), Vec::<&str>::new());
        assert_eq!(table.take_due(250), ["b", "a"]);
        assert!(table.is_empty());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn a_key_taken_out_can_wait_again() {
        let mut table = DeadlineTable::default();
        table.insert(7, 10);
        assert_eq!(table.take_due(10), [7]);
        table.insert(7, 50);
        assert_eq!(table.next_deadline(), Some(50));
        assert_eq!(table.take_due(49), Vec::<i32>::new());
        assert_eq!(table.take_due(50), [7]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_task_wakes_for_each_deadline_and_for_the_next_one_it_asks_for() {
        let clock = Clock::new();
        let timers = Timers::new(clock);
        let start = clock.now();
        timers.insert("room-a", start + 1_000);
        timers.insert("room-b", start + 3_000);
        let fired = Arc::new(Mutex::new(Vec::new()));
        let runner = {
            let (timers, fired) = (timers.clone(), fired.clone());
            tokio::spawn(async move {
                timers
                    .run(|key, now| {
                        let fired = fired.clone();
                        async move {
                            fired.lock().unwrap().push((key, now - start));
                            // room-a asks once more, 500 ms later.
                            (key == "room-a" && now - start < 1_500).then_some(now + 500)
                        }
                    })
                    .await;
            })
        };
        tokio::time::sleep(Duration::from_millis(5_000)).await;
        assert_eq!(
            *fired.lock().unwrap(),
            [("room-a", 1_000), ("room-a", 1_500), ("room-b", 3_000)]
        );
        timers.insert("room-c", clock.now() + 100);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fired.lock().unwrap().last(), Some(&("room-c", 5_100)));
        assert!(timers.is_empty());
        runner.abort();
    }
}
