//! Waiting before trying again, shared by the DynamoDB store (lost races, unprocessed batch items) and the
//! fan-out (throttled posts), so every retry in the backend backs off the same way.

use std::time::Duration;

/// Exponential backoff with full jitter: up to 10 ms, 20 ms, 40 ms… capped at 500 ms, never zero.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 10u64.saturating_mul(1 << attempt.min(6)).min(500);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (cap + 1);
    Duration::from_millis(jitter.max(1))
}

/// Sleeps for [`backoff`]`(attempt)`.
pub async fn pause(attempt: u32) {
    tokio::time::sleep(backoff(attempt)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..20 {
            let wait = backoff(attempt);
            assert!(wait >= Duration::from_millis(1) && wait <= Duration::from_millis(500), "{attempt}: {wait:?}");
        }
        assert!(backoff(0) <= Duration::from_millis(10));
    }
}
