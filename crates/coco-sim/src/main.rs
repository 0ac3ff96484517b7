//! `cargo run -p coco-sim -- --seeds N [--from S]`: runs seeds S..S+N and prints, for a
//! failing one, the command that replays it alone (with `RUST_LOG` set, what nodes log).
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::process::ExitCode;

fn main() -> ExitCode {
    // `RUST_LOG=warn` (or finer) shows what the nodes log while a seed runs.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: u64| -> u64 {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let (from, count) = (value("--from", 0), value("--seeds", 100));
    let mut failed = 0;
    for seed in from..from.saturating_add(count) {
        match coco_sim::run_seed(seed) {
            Ok(report) => println!(
                "seed {seed}: ok ({} committed, {} crashes, {} partitions, view {}, \
                 {} snapshots, {} installed)",
                report.committed,
                report.crashes,
                report.partitions,
                report.view,
                report.snapshots,
                report.installed
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED {e}");
                println!("  replay: cargo run -p coco-sim -- --from {seed} --seeds 1");
            }
        }
    }
    println!("{count} seeds from {from}: {failed} failed");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
