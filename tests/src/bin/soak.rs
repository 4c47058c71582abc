//! `make soak`: the convergence simulation (`e2e::sim`) on many seeds with many
//! actions each; prints one line per seed and the totals, and the failures of the
//! first broken seeds. Exits 1 when any invariant broke.
//!
//! `soak [--seeds N] [--from S] [--actions A] [--parallel P] [--final-rounds R] [--concurrent] [--verbose]`

use e2e::sim::{self, Config, Report};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds = arg(&args, "--seeds", 24);
    let from = arg(&args, "--from", 1000);
    let actions = arg(&args, "--actions", 500) as usize;
    let parallel = arg(&args, "--parallel", 12).max(1) as usize;
    let final_rounds = arg(&args, "--final-rounds", 1) as usize;
    let verbose = args.iter().any(|a| a == "--verbose");
    let concurrent = args.iter().any(|a| a == "--concurrent");
    let mut reports: Vec<Report> = Vec::new();
    let all: Vec<u64> = (from..from + seeds).collect();
    for chunk in all.chunks(parallel) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|&seed| {
                let mut cfg = Config::new(seed, actions);
                cfg.final_rounds = final_rounds;
                cfg.verbose = verbose;
                cfg.concurrent = concurrent;
                tokio::spawn(sim::run(cfg))
            })
            .collect();
        for run in runs {
            match run.await {
                Ok(r) => {
                    println!("{}", r.summary());
                    reports.push(r);
                }
                Err(e) => println!("a simulation panicked: {e}"),
            }
        }
    }
    println!("{}", sim::totals(&reports));
    let broken: Vec<&Report> = reports.iter().filter(|r| !r.broken().is_empty()).collect();
    for r in broken.iter().take(2) {
        println!("\n--- failures of seed {} (first 6) ---", r.seed);
        for f in r.failures.iter().take(6) {
            println!("{f}");
        }
    }
    if !broken.is_empty() || reports.len() as u64 != seeds {
        std::process::exit(1);
    }
}
