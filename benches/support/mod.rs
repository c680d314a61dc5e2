//! What the benchmarks share: how they are run, and how they summarise timings.
#![allow(dead_code)] // each benchmark uses a subset

use std::future::Future;
use std::time::Duration;

/// `cargo bench` passes `--bench`: the full run. Under `cargo test` a bench target runs
/// without it, and runs its small smoke version.
pub fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs the benchmark's body on a multi-threaded runtime.
pub fn run<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime").block_on(body)
}

pub fn median(d: Vec<Duration>) -> Duration {
    percentile(d, 50.0)
}

/// The `p`th percentile (nearest rank) of `d`.
pub fn percentile(mut d: Vec<Duration>, p: f64) -> Duration {
    d.sort();
    let rank = ((p / 100.0) * d.len() as f64).ceil() as usize;
    d[rank.clamp(1, d.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
