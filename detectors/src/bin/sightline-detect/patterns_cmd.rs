//! `patterns` subcommand (owned by the patterns work; replace this placeholder).

use crate::BenchRow;

pub fn run(_input: &str, _output: &str) -> Result<(), Box<dyn std::error::Error>> {
    Err("not built yet".into())
}

pub fn bench_rows() -> Result<Vec<BenchRow>, Box<dyn std::error::Error>> {
    Ok(Vec::new())
}
