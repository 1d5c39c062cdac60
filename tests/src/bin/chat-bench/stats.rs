//! Percentiles over samples, and one fan-out round's figures.

use std::time::{Duration, Instant};

/// The `p`-th percentile (0-100) by nearest rank; `None` for no samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One round of delivering a frame to many connections.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    /// From sending to the last recipient, ms.
    pub last: f64,
    /// From sending to the median recipient, ms.
    pub median: f64,
    pub received: usize,
    pub expected: usize,
}

impl Round {
    pub fn new(started: Instant, mut arrivals: Vec<Instant>, expected: usize) -> Round {
        arrivals.sort();
        let since = |at: Option<&Instant>| at.map_or(f64::NAN, |at| ms(at.duration_since(started)));
        Round {
            last: since(arrivals.last()),
            median: since(arrivals.get(arrivals.len() / 2)),
            received: arrivals.len(),
            expected,
        }
    }
}

/// p50 and p99 of the last and median recipient over rounds, and how many frames went missing.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub rounds: usize,
    pub last_p50: f64,
    pub last_p99: f64,
    pub median_p50: f64,
    pub median_p99: f64,
    pub missing: usize,
}

impl Summary {
    pub fn of(rounds: &[Round]) -> Summary {
        let last: Vec<f64> = rounds.iter().map(|r| r.last).filter(|v| v.is_finite()).collect();
        let median: Vec<f64> = rounds.iter().map(|r| r.median).filter(|v| v.is_finite()).collect();
        Summary {
            rounds: rounds.len(),
            last_p50: percentile(&last, 50.0).unwrap_or(f64::NAN),
            last_p99: percentile(&last, 99.0).unwrap_or(f64::NAN),
            median_p50: percentile(&median, 50.0).unwrap_or(f64::NAN),
            median_p99: percentile(&median, 99.0).unwrap_or(f64::NAN),
            missing: rounds.iter().map(|r| r.expected - r.received).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
