//! `forecast` subcommand (owned by the forecast work; replace this placeholder).

use crate::BenchRow;

pub fn run(_args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    Err("not built yet".into())
}

pub fn bench_rows() -> Result<Vec<BenchRow>, Box<dyn std::error::Error>> {
    Ok(Vec::new())
}
