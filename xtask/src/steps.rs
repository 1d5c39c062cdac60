//! Step banners with elapsed time, and the end-of-run summary.

use std::time::{Duration, Instant};

use crate::Res;

enum Outcome {
    Ok,
    Failed,
}

pub struct Steps {
    started: Instant,
    done: Vec<(String, Duration, Outcome)>,
}

impl Steps {
    pub fn new() -> Self {
        Steps { started: Instant::now(), done: Vec::new() }
    }

    /// Run one step between a start banner and a result line.
    pub fn run<T>(&mut self, name: &str, step: impl FnOnce() -> Res<T>) -> Res<T> {
        println!("\n==> [{:>6.1}s] {name}", self.started.elapsed().as_secs_f64());
        let started = Instant::now();
        let result = crate::check_interrupted().and_then(|()| step());
        let took = started.elapsed();
        match &result {
            Ok(_) => {
                println!("<== {name}: ok ({:.1}s)", took.as_secs_f64());
                self.done.push((name.to_string(), took, Outcome::Ok));
            }
            Err(err) => {
                eprintln!("<== {name}: FAILED after {:.1}s: {err}", took.as_secs_f64());
                self.done.push((name.to_string(), took, Outcome::Failed));
            }
        }
        result
    }

    pub fn summary(&self) {
        let width = self.done.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
        println!("\nSummary:");
        for (name, took, outcome) in &self.done {
            let status = match outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "FAILED",
            };
            println!("  {name:<width$}  {status:<6}  {:>7.1}s", took.as_secs_f64());
        }
        println!("  {:<width$}  {:<6}  {:>7.1}s", "total", "", self.started.elapsed().as_secs_f64());
    }
}
