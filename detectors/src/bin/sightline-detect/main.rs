//! `sightline-detect`: runs the detectors library on files, for the scorers in
//! `../shared/eval` and for benchmarks.
//!
//! ```text
//! sightline-detect anomaly INPUT.csv OUTPUT.csv     # NAB CSV in, timestamp,value,anomaly_score out
//! sightline-detect patterns INPUT.txt OUTPUT.txt    # one log line in, ID<TAB>TEMPLATE out
//! sightline-detect forecast ...                     # forecasting evaluation (see `forecast --help`)
//! sightline-detect bench                            # throughput of every capability, as a table
//! ```

mod anomaly_cmd;
mod bench_cmd;
mod forecast_cmd;
mod patterns_cmd;

use std::process::ExitCode;

/// One row of the `bench` table.
pub struct BenchRow {
    pub capability: String,
    pub items: u64,
    pub unit: &'static str,
    pub seconds: f64,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: sightline-detect anomaly INPUT.csv OUTPUT.csv\n       sightline-detect patterns INPUT.txt OUTPUT.txt\n       sightline-detect forecast [ARGS...]\n       sightline-detect bench"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("anomaly") if args.len() == 3 => anomaly_cmd::run(&args[1], &args[2]),
        Some("patterns") if args.len() == 3 => patterns_cmd::run(&args[1], &args[2]),
        Some("forecast") => forecast_cmd::run(&args[1..]),
        Some("bench") => bench_cmd::run(),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline-detect: {e:#}");
            ExitCode::FAILURE
        }
    }
}
