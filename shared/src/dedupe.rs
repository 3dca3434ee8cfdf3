//! Memory of recently handled keys, for the life of a warm container: the idempotency
//! store's first look (a duplicate on the same container needs no round trip) and its only
//! guard when no table is configured or the table fails. It cannot see duplicates that land
//! on another container; record a key only after its side effects happened, so a retry of a
//! failed attempt is never mistaken for a duplicate.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

pub struct RecentEvents {
    capacity: usize,
    inner: Mutex<(VecDeque<String>, HashSet<String>)>,
}

impl RecentEvents {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((VecDeque::new(), HashSet::new())),
        }
    }

    pub fn seen(&self, id: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .contains(id)
    }

    pub fn record(&self, id: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (order, set) = &mut *guard;
        if !set.insert(id.to_owned()) {
            return;
        }
        order.push_back(id.to_owned());
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recorded_ids_and_forgets_the_oldest_past_capacity() {
        let recent = RecentEvents::new(2);
        assert!(!recent.seen("a"));
        recent.record("a");
        recent.record("b");
        assert!(recent.seen("a") && recent.seen("b"));
        recent.record("c");
        assert!(!recent.seen("a"));
        assert!(recent.seen("c"));
    }
}
