//! What the benchmarks share: the run mode and latency statistics.
#![allow(dead_code)] // each bench uses a subset

use std::time::Duration;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs the smoke version.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A multi-threaded runtime for a benchmark's `main`.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
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
