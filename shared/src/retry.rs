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

/// Runs `operation` up to `attempts` times, pausing between tries, while its error is one `worth_retrying`
/// (another writer held the item for a moment); any other outcome, or the last try's, is the answer.
pub async fn while_contended<T, E, Operation, Attempt>(
    attempts: u32,
    mut operation: Operation,
    worth_retrying: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(e) if attempt < attempts && worth_retrying(&e) => {
                pause(attempt).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contended_operations_are_tried_again_up_to_the_limit_and_other_errors_at_once() {
        let tries = std::cell::Cell::new(0);
        let flaky = || {
            tries.set(tries.get() + 1);
            let answer = if tries.get() < 3 { Err("conflict") } else { Ok(tries.get()) };
            async move { answer }
        };
        assert_eq!(while_contended(8, flaky, |e| *e == "conflict").await, Ok(3));

        tries.set(0);
        let always = || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>("conflict") }
        };
        assert_eq!(while_contended(4, always, |e| *e == "conflict").await, Err("conflict"));
        assert_eq!(tries.get(), 4, "four tries in all, then the error");

        tries.set(0);
        let refused = || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>("refused") }
        };
        assert_eq!(while_contended(8, refused, |e| *e == "conflict").await, Err("refused"));
        assert_eq!(tries.get(), 1, "an error that is not contention is answered at once");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..20 {
            let wait = backoff(attempt);
            assert!(wait >= Duration::from_millis(1) && wait <= Duration::from_millis(500), "{attempt}: {wait:?}");
        }
        assert!(backoff(0) <= Duration::from_millis(10));
    }
}
