//! Identifiers that sort in the order they were made: `evt_` event ids and `dlv_` webhook
//! delivery ids.
//!
//! A plain ULID orders by millisecond only; two made in the same millisecond sort at random.
//! Webhook deliveries are listed, and due ones started, in id order, and clients sort events
//! by id, so these come from one generator that increments within a millisecond (and
//! across a clock step back). Ids that name things rather than order them (keys, webhooks,
//! media, request ids) stay plain ULIDs, whose random part is not guessable from a
//! neighbour's.

use std::sync::Mutex;
use ulid::{Generator, Ulid};

static ORDERED: Mutex<Generator> = Mutex::new(Generator::new());

/// A ULID greater than every other this function has made in this process.
pub fn ordered() -> Ulid {
    let mut generator = ORDERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match generator.generate() {
        Ok(id) => id,
        // 2^80 ids in one millisecond: carry into the next millisecond.
        Err(overflow) => overflow.commit_overflow_increment(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let ids: Vec<Ulid> = (0..10_000).map(|_| ordered()).collect();
        let same_ms = ids
            .windows(2)
            .filter(|w| w[0].timestamp_ms() == w[1].timestamp_ms())
            .count();
        assert!(same_ms > 100, "only {same_ms} pairs shared a millisecond");
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} then {}", w[0], w[1]);
            // Their text sorts the same way: stored keys and cursors compare text.
            assert!(w[0].to_string() < w[1].to_string());
        }
    }

    #[test]
    fn threads_share_one_order() {
        let made: Vec<Vec<Ulid>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..2_000).map(|_| ordered()).collect::<Vec<_>>()))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut all = std::collections::BTreeSet::new();
        for ids in &made {
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            all.extend(ids.iter().copied());
        }
        assert_eq!(all.len(), 8_000, "an id was made twice");
    }
}
