//! One organization's recent events, newest last, so a client that reconnects with
//! `after` gets what it missed (API.md §7.4: 15 minutes, at most 50 000 events). Each
//! event is kept already serialized: a frame is encoded once, however many streams and
//! resumes send it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// An event as streams send it.
#[derive(Debug)]
pub struct Buffered {
    pub id: String,
    pub event: String,
    pub session: String,
    /// The envelope's JSON, the frame's text.
    pub text: Utf8Bytes,
}

/// A bounded, time-limited run of events in the order they were published.
#[derive(Debug)]
pub struct EventBuffer {
    events: VecDeque<(Instant, Arc<Buffered>)>,
    max_events: usize,
    max_age: Duration,
}

impl EventBuffer {
    pub fn new(max_events: usize, max_age: Duration) -> Self {
        EventBuffer {
            events: VecDeque::new(),
            max_events,
            max_age,
        }
    }

    /// Appends an event that arrived at `now`, dropping the oldest beyond the bounds.
    pub fn push(&mut self, event: Arc<Buffered>, now: Instant) {
        if self.max_events == 0 {
            return;
        }
        while self.events.len() >= self.max_events {
            self.events.pop_front();
        }
        self.events.push_back((now, event));
        self.prune(now);
    }

    /// Drops events older than the age bound.
    pub fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.events.front()
            && now.saturating_duration_since(*at) > self.max_age
        {
            self.events.pop_front();
        }
    }

    /// The events published after the one with id `after`, oldest first; `None` when that
    /// event is not (or no longer) here. A reverse scan: resumes are rare next to
    /// publishes, and an index would cost memory for every buffered event.
    pub fn after(&self, after: &str) -> Option<impl Iterator<Item = &Arc<Buffered>>> {
        let at = self.events.iter().rposition(|(_, e)| e.id == after)?;
        Some(self.events.iter().skip(at + 1).map(|(_, e)| e))
    }

    /// Forgets everything: after events were lost on the way in, no resume may skip
    /// over the hole.
    pub fn clear(&mut self) {
        self.events.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u32) -> Arc<Buffered> {
        Arc::new(Buffered {
            id: format!("evt_{n}"),
            event: "message".into(),
            session: "s".into(),
            text: format!("{{\"n\":{n}}}").into(),
        })
    }

    fn ids<'a>(it: impl Iterator<Item = &'a Arc<Buffered>>) -> Vec<String> {
        it.map(|e| e.id.clone()).collect()
    }

    #[test]
    fn events_after_an_id_come_in_order_and_unknown_ids_are_none() {
        let now = Instant::now();
        let mut b = EventBuffer::new(10, Duration::from_secs(60));
        for n in 1..=4 {
            b.push(ev(n), now);
        }
        assert_eq!(ids(b.after("evt_2").unwrap()), ["evt_3", "evt_4"]);
        assert_eq!(ids(b.after("evt_4").unwrap()), Vec::<String>::new());
        assert!(b.after("evt_9").is_none());
    }

    #[test]
    fn the_count_bound_drops_the_oldest() {
        let now = Instant::now();
        let mut b = EventBuffer::new(3, Duration::from_secs(60));
        for n in 1..=5 {
            b.push(ev(n), now);
        }
        assert_eq!(b.len(), 3);
        // evt_2 has left: resuming after it is a gap, not a silent skip.
        assert!(b.after("evt_2").is_none());
        assert_eq!(ids(b.after("evt_3").unwrap()), ["evt_4", "evt_5"]);
    }

    #[test]
    fn the_age_bound_drops_old_events() {
        let start = Instant::now();
        let mut b = EventBuffer::new(100, Duration::from_secs(60));
        b.push(ev(1), start);
        b.push(ev(2), start + Duration::from_secs(30));
        b.prune(start + Duration::from_secs(61));
        assert!(b.after("evt_1").is_none());
        assert!(b.after("evt_2").is_some());
        b.push(ev(3), start + Duration::from_secs(85));
        assert_eq!(ids(b.after("evt_2").unwrap()), ["evt_3"]);
        b.prune(start + Duration::from_secs(200));
        assert!(b.is_empty());
    }

    #[test]
    fn a_zero_bound_keeps_nothing_and_clear_forgets() {
        let now = Instant::now();
        let mut off = EventBuffer::new(0, Duration::from_secs(60));
        off.push(ev(1), now);
        assert!(off.is_empty());
        let mut b = EventBuffer::new(10, Duration::from_secs(60));
        b.push(ev(1), now);
        b.clear();
        assert!(b.after("evt_1").is_none());
    }
}
