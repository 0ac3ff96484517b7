//! `coco bench`: drive a node with many TLS connections for a fixed duration and report
//! committed transactions per second and latency percentiles.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use coco_client::ClientIdentity;
use coco_client::bench::{BenchConfig, BenchProtocol};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `coco bench`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    /// Another workload than the logging app's writes.
    #[command(subcommand)]
    workload: Option<Workload>,
    /// The node, e.g. `127.0.0.1:8000` (`https://` is accepted and ignored).
    #[arg(long, default_value = "127.0.0.1:8000")]
    address: String,
    /// Sandbox directory holding `service_cert.pem`, `user0_cert.pem`, `user0_privk.pem`.
    #[arg(long, default_value = "sandbox")]
    dir: PathBuf,
    /// TLS connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// `h2` (concurrent streams) or `h1` (pipelined HTTP/1.1).
    #[arg(long, default_value = "h2")]
    protocol: String,
    /// Requests in flight per connection (streams for h2, pipeline depth for h1).
    #[arg(long, default_value_t = 16)]
    depth: u32,
    /// Write endpoint; `/app/log/blocking/private` measures commit latency.
    #[arg(long, default_value = "/app/log/private")]
    path: String,
    /// Bytes per message.
    #[arg(long, default_value_t = 100)]
    value_bytes: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Drive etcd instead: its members' client addresses (`host:port,host:port,...`), with
    /// `POST /v3/kv/put` (etcd answers once committed, as the commit-blocking path does).
    /// One request in flight per connection.
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
}

/// Other workloads.
#[derive(clap::Subcommand)]
enum Workload {
    /// Pre-signed ERC-20 transfers with batched `eth_sendRawTransaction`, against Coco's
    /// Ethereum app or an Ethereum node such as anvil.
    Eth(crate::bench_eth::EthBenchArgs),
}

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    if let Some(Workload::Eth(eth)) = &args.workload {
        return crate::bench_eth::run(eth);
    }
    if !args.etcd.is_empty() {
        return run_etcd(args);
    }
    let addr = args.address.trim_start_matches("https://").trim_end_matches('/');
    let addr = addr.parse().with_context(|| format!("address {addr:?} is not IP:PORT"))?;
    let read = |name: &str| {
        let path = args.dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let protocol = match args.protocol.as_str() {
        "h2" => BenchProtocol::Http2 { streams_per_connection: args.depth },
        "h1" => BenchProtocol::Http1Pipelined { depth: args.depth },
        other => bail!("protocol {other:?} is neither h2 nor h1"),
    };
    let config = BenchConfig {
        addr,
        service_cert_pem: read("service_cert.pem")?,
        identity: Some(ClientIdentity {
            cert_pem: read("user0_cert.pem")?,
            key_pem: read("user0_privk.pem")?,
        }),
        connections: args.connections,
        duration: Duration::from_secs(args.duration),
        protocol,
        path: args.path.clone(),
        value_bytes: args.value_bytes,
        commit_timeout: Duration::from_secs(30),
    };
    config.validate()?;
    let bar = ProgressBar::new(args.duration * 1000);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    coco_host::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(coco_client::bench::run(&config, |progress| {
        bar.set_position(u64::try_from(progress.elapsed.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(format!(
            "{} ok, {} failed",
            progress.requests_ok, progress.requests_failed
        ));
    }))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    } else {
        print_report(args, &report);
    }
    if report.requests_ok == 0 {
        bail!("no request succeeded: {}", report.first_error.as_deref().unwrap_or("unknown error"));
    }
    Ok(())
}

fn run_etcd(args: &BenchArgs) -> Result<()> {
    let endpoints = args
        .etcd
        .iter()
        .map(|address| {
            let address = address.trim_start_matches("http://").trim_end_matches('/');
            address.parse().with_context(|| format!("etcd address {address:?} is not IP:PORT"))
        })
        .collect::<Result<Vec<std::net::SocketAddr>>>()?;
    let config = coco_client::bench::etcd::EtcdBenchConfig {
        endpoints,
        connections: args.connections,
        duration: Duration::from_secs(args.duration),
        value_bytes: args.value_bytes,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(coco_client::bench::etcd::run(&config, |_| {}))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    } else {
        println!(
            "etcd /v3/kv/put x{} conns x1 in flight, {} s, {} B values",
            args.connections, args.duration, args.value_bytes
        );
        print_numbers(&report);
    }
    if report.requests_ok == 0 {
        bail!("no put succeeded: {}", report.first_error.as_deref().unwrap_or("unknown error"));
    }
    Ok(())
}

fn report_json(report: &coco_client::bench::BenchReport) -> serde_json::Value {
    serde_json::json!({
        "requests_ok": report.requests_ok,
        "requests_failed": report.requests_failed,
        "duration_s": report.duration.as_secs_f64(),
        "tx_per_s": report.tx_per_s,
        "committed_tx_per_s": report.committed_tx_per_s,
        "latency_us": {
            "p50": report.latency.p50_us, "p90": report.latency.p90_us,
            "p99": report.latency.p99_us, "max": report.latency.max_us,
        },
        "commit_start": report.commit_start.to_string(),
        "commit_end": report.commit_end.to_string(),
    })
}

fn print_report(args: &BenchArgs, report: &coco_client::bench::BenchReport) {
    println!(
        "{} {} x{} conns x{} in flight, {} s, {} B values",
        args.path, args.protocol, args.connections, args.depth, args.duration, args.value_bytes
    );
    print_numbers(report);
}

fn print_numbers(report: &coco_client::bench::BenchReport) {
    println!(
        "  ok {}  failed {}  ({:?})",
        report.requests_ok, report.requests_failed, report.failures_by_status
    );
    println!("  responses/s  {:.0}", report.tx_per_s);
    match report.committed_tx_per_s {
        Some(rate) => {
            println!("  committed/s  {rate:.0}  ({} -> {})", report.commit_start, report.commit_end)
        }
        None => println!("  committed/s  n/a (last transaction did not commit in time)"),
    }
    let l = &report.latency;
    println!(
        "  latency µs   p50 {}  p90 {}  p99 {}  max {}",
        l.p50_us, l.p90_us, l.p99_us, l.max_us
    );
    if let Some(error) = &report.first_error {
        println!("  first error: {error}");
    }
}
