//! Per-provider circuit breaker: after N consecutive failures the provider is skipped for a
//! cool-down, then one trial call decides whether it closes again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Breaker state as reported by [`Breaker::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call is allowed.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// A circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner { failures: 0, open_until: None, trial_in_flight: false }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Current state.
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match inner.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go ahead now; in half-open state only one trial is let through.
    pub fn try_acquire(&self) -> bool {
        let mut inner = self.lock();
        match inner.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if inner.trial_in_flight => false,
            Some(_) => {
                inner.trial_in_flight = true;
                true
            }
        }
    }

    /// Records a success: closes the breaker.
    pub fn on_success(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.open_until = None;
        inner.trial_in_flight = false;
    }

    /// Records a failure of the provider; opens (again) at the threshold or after a failed trial.
    pub fn on_failure(&self) {
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        if inner.trial_in_flight || inner.failures >= self.threshold {
            inner.open_until = Some(Instant::now() + self.cooldown);
        }
        inner.trial_in_flight = false;
    }

    /// Releases a trial slot without a verdict (the request itself was at fault).
    pub fn on_neutral(&self) {
        self.lock().trial_in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_cools_down_and_closes() {
        let b = Breaker::new(2, Duration::from_secs(30));
        assert!(b.try_acquire());
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.try_acquire());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.try_acquire(), "one trial call");
        assert!(!b.try_acquire(), "only one trial at a time");
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open, "failed trial re-opens");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(b.try_acquire());
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire());
    }
}
