//! `bench`: every capability's throughput on synthetic input, as one table.

use crate::BenchRow;

pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut rows: Vec<BenchRow> = Vec::new();
    rows.extend(crate::anomaly_cmd::bench_rows()?);
    rows.extend(crate::patterns_cmd::bench_rows()?);
    rows.extend(crate::forecast_cmd::bench_rows()?);
    println!("| capability | items | seconds | throughput |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        let rate = if r.seconds > 0.0 {
            r.items as f64 / r.seconds
        } else {
            f64::INFINITY
        };
        println!(
            "| {} | {} {} | {:.3} | {:.0} {}/s |",
            r.capability, r.items, r.unit, r.seconds, rate, r.unit
        );
    }
    Ok(())
}
