//! Time as the orchestrator sees it. Production uses the system clock; tests inject a
//! clock that runs faster so that an hourly schedule fires within seconds, without any
//! test sleeping on a schedule.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// How long to really wait for `clock_ms` of this clock's time to pass.
    fn real_wait(&self, clock_ms: i64) -> Duration {
        Duration::from_millis(clock_ms.max(0) as u64)
    }
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that starts at the system time and runs `factor` times faster: with a factor
/// of 3600, an hour passes in a second. For tests and drills.
pub struct FastClock {
    start_ms: i64,
    started: Instant,
    factor: u32,
}

impl FastClock {
    pub fn new(factor: u32) -> FastClock {
        FastClock {
            start_ms: SystemClock.now_ms(),
            started: Instant::now(),
            factor: factor.max(1),
        }
    }
}

impl Clock for FastClock {
    fn now_ms(&self) -> i64 {
        self.start_ms + (self.started.elapsed().as_millis() as i64) * i64::from(self.factor)
    }
    fn real_wait(&self, clock_ms: i64) -> Duration {
        Duration::from_millis((clock_ms.max(0) / i64::from(self.factor)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_clock_scales_waits_and_starts_at_now() {
        let c = FastClock::new(3600);
        assert!((c.now_ms() - SystemClock.now_ms()).abs() < 1000);
        assert_eq!(c.real_wait(3_600_000), Duration::from_secs(1));
        assert_eq!(c.real_wait(-5), Duration::ZERO);
        assert_eq!(SystemClock.real_wait(1500), Duration::from_millis(1500));
    }
}
