//! Send rates per session: two token buckets, from the session's `ratePerMin` and
//! `ratePerHour` (API.md §2, §6.3). Each holds at most one minute's (hour's) budget and
//! refills continuously; every dispatched item takes one token from each.

use std::time::Instant;

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    PerMinute,
    PerHour,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::PerMinute => "perMinute",
            Limit::PerHour => "perHour",
        }
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    /// Tokens gained per millisecond.
    per_ms: f64,
}

impl Bucket {
    fn new(per_window: u32, window_ms: f64) -> Bucket {
        let capacity = f64::from(per_window.max(1));
        Bucket {
            capacity,
            tokens: capacity,
            per_ms: capacity / window_ms,
        }
    }

    fn refill(&mut self, elapsed_ms: f64) {
        self.tokens = (self.tokens + elapsed_ms * self.per_ms).min(self.capacity);
    }

    /// Milliseconds until a whole token is there (0 when one is).
    fn wait_ms(&self) -> u64 {
        if self.tokens >= 1.0 {
            0
        } else {
            // Less a hair, so float error does not add a millisecond to a whole wait.
            ((1.0 - self.tokens) / self.per_ms - 1e-6).ceil().max(0.0) as u64
        }
    }
}

/// A session's two buckets.
#[derive(Debug, Clone)]
pub(super) struct Buckets {
    minute: Bucket,
    hour: Bucket,
    limits: (u32, u32),
    last: Instant,
}

impl Buckets {
    /// Full buckets for `per_min` and `per_hour`.
    pub(super) fn new(per_min: u32, per_hour: u32, now: Instant) -> Buckets {
        Buckets {
            minute: Bucket::new(per_min, 60_000.0),
            hour: Bucket::new(per_hour, 3_600_000.0),
            limits: (per_min, per_hour),
            last: now,
        }
    }

    /// Applies changed limits (a platform admin's change takes effect at the next
    /// dispatch); tokens already there stay, up to the new capacity.
    pub(super) fn set_limits(&mut self, per_min: u32, per_hour: u32) {
        if self.limits == (per_min, per_hour) {
            return;
        }
        let (m, h) = (self.minute.tokens, self.hour.tokens);
        self.minute = Bucket::new(per_min, 60_000.0);
        self.hour = Bucket::new(per_hour, 3_600_000.0);
        self.minute.tokens = m.min(self.minute.capacity);
        self.hour.tokens = h.min(self.hour.capacity);
        self.limits = (per_min, per_hour);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        self.minute.refill(elapsed);
        self.hour.refill(elapsed);
        self.last = now;
    }

    /// Whether a token is there in both buckets now; else which limit holds it back and
    /// for how long.
    pub(super) fn check(&mut self, now: Instant) -> Result<(), (Limit, u64)> {
        self.refill(now);
        let (m, h) = (self.minute.wait_ms(), self.hour.wait_ms());
        if h > 0 && h >= m {
            Err((Limit::PerHour, h))
        } else if m > 0 {
            Err((Limit::PerMinute, m))
        } else {
            Ok(())
        }
    }

    /// Takes a token from each bucket, or says how long to wait.
    pub(super) fn take(&mut self, now: Instant) -> Result<(), (Limit, u64)> {
        self.check(now)?;
        self.minute.tokens -= 1.0;
        self.hour.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_minutes_budget_then_waits_refill_continuously() {
        let t0 = Instant::now();
        let mut b = Buckets::new(3, 600, t0);
        for _ in 0..3 {
            b.take(t0).unwrap();
        }
        let (limit, wait) = b.take(t0).unwrap_err();
        assert_eq!(limit, Limit::PerMinute);
        assert_eq!(wait, 20_000);
        // 20 s later one token is back (3 per minute).
        b.take(t0 + Duration::from_secs(20)).unwrap();
        assert!(b.check(t0 + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn the_hour_budget_binds_once_the_minutes_are_spent() {
        let t0 = Instant::now();
        let mut b = Buckets::new(100, 2, t0);
        b.take(t0).unwrap();
        b.take(t0).unwrap();
        let (limit, wait) = b.take(t0).unwrap_err();
        assert_eq!(limit, Limit::PerHour);
        assert_eq!(wait, 1_800_000);
        // Raising the limits applies at once, tokens kept up to the new capacity.
        b.set_limits(100, 600);
        assert!(b.take(t0 + Duration::from_secs(10)).is_ok());
    }
}
