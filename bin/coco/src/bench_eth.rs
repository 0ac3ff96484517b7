//! `coco bench eth`: pre-signed ERC-20 transfers submitted with batched
//! `eth_sendRawTransaction`, against Coco (TLS, client certificate) or any Ethereum node
//! over plain HTTP (anvil), so both run the same workload in the same way.
//!
//! Setup (not timed): deploy `CocoToken` (`tests/eth/contracts/CocoToken.bin`, compiled by
//! solc 0.8.37 for Prague) from development account 0, give each sender ETH for gas and
//! tokens. Then every sender's transfers are signed up front (timed separately),
//! each sender to its own recipient so no two senders touch the same storage slot. Load:
//! each connection sends its senders' transactions in nonce order, in batches, one batch
//! in flight. The run ends when the last transaction of every sender is final: on Coco,
//! when its Coco receipt exists (the transaction is committed); elsewhere, when its
//! Ethereum receipt exists (it is in a block).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use coco_client::{Client, ClientConfig, ClientIdentity, Connection, Protocol};
use coco_evm::sign::{Eip1559, LocalKey};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};

/// Development account 0 of the `test … junk` mnemonic: funds the senders.
const FUNDER: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const GWEI: u128 = 1_000_000_000;
const ETHER: u128 = GWEI * GWEI;
/// Gas for one transfer (a first transfer to a recipient sets a slot: ~52k).
const TRANSFER_GAS: u64 = 80_000;
/// Fee cap: far above both chains' base fee, which anvil raises while its blocks are full.
const MAX_FEE: u128 = 100 * GWEI;
const TIP: u128 = GWEI;

/// Arguments of `coco bench eth`.
#[derive(clap::Args)]
pub(crate) struct EthBenchArgs {
    /// A Coco node (`127.0.0.1:8000`, TLS with the sandbox's user0), or an Ethereum node's
    /// plain JSON-RPC URL (`http://127.0.0.1:8545`, e.g. anvil).
    #[arg(long, default_value = "127.0.0.1:8000")]
    target: String,
    /// Sandbox directory holding `service_cert.pem`, `user0_cert.pem`, `user0_privk.pem`.
    #[arg(long, default_value = "sandbox")]
    dir: PathBuf,
    /// Transfers to submit.
    #[arg(long, default_value_t = 20_000)]
    txs: u64,
    /// Accounts sending them (each sends txs/senders, in nonce order).
    #[arg(long, default_value_t = 64)]
    senders: u64,
    /// Transactions per JSON-RPC batch.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Connections (each carries senders/connections senders, one batch in flight).
    #[arg(long, default_value_t = 8)]
    connections: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// One connection's way to post a JSON-RPC body.
enum Rpc {
    Coco(Connection),
    Plain { sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>, url: String },
}

/// Where the load goes.
#[derive(Clone)]
enum Target {
    Coco { addr: SocketAddr, client: Client },
    Plain { addr: SocketAddr, url: String },
}

impl Target {
    fn parse(args: &EthBenchArgs) -> Result<Self> {
        if let Some(rest) = args.target.strip_prefix("http://") {
            let authority = rest.split('/').next().unwrap_or(rest);
            let addr =
                authority.parse().with_context(|| format!("{authority:?} is not IP:PORT"))?;
            return Ok(Self::Plain { addr, url: args.target.clone() });
        }
        let addr = args.target.trim_start_matches("https://").trim_end_matches('/');
        let addr = addr.parse().with_context(|| format!("target {addr:?} is not IP:PORT"))?;
        let read = |name: &str| {
            let path = args.dir.join(name);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let identity =
            ClientIdentity { cert_pem: read("user0_cert.pem")?, key_pem: read("user0_privk.pem")? };
        let config = ClientConfig::new(&read("service_cert.pem")?, Some(&identity))?;
        Ok(Self::Coco { addr, client: Client::new(config) })
    }

    async fn connect(&self) -> Result<Rpc> {
        match self {
            Self::Coco { addr, client } => {
                Ok(Rpc::Coco(client.connect(*addr, Protocol::Http2).await?))
            }
            Self::Plain { addr, url } => {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let io = hyper_util::rt::TokioIo::new(stream);
                let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(connection);
                Ok(Rpc::Plain { sender, url: url.clone() })
            }
        }
    }

    fn is_coco(&self) -> bool {
        matches!(self, Self::Coco { .. })
    }
}

impl Rpc {
    async fn post(&mut self, body: Vec<u8>) -> Result<Value> {
        let bytes = match self {
            Self::Coco(conn) => {
                let response = conn
                    .request(http::Method::POST, "/app/eth", Some("application/json"), body.into())
                    .await?;
                if response.status != 200 {
                    bail!("HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
                }
                response.body.to_vec()
            }
            Self::Plain { sender, url } => {
                let request = hyper::Request::post(url.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))?;
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                response.into_body().collect().await?.to_bytes().to_vec()
            }
        };
        serde_json::from_slice(&bytes).context("the answer is not JSON")
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self.post(serde_json::to_vec(&request)?).await?;
        if let Some(error) = response.get("error") {
            bail!("{method}: {error}");
        }
        Ok(response["result"].clone())
    }

    /// Sends raw transactions as one batch; fails on the first element refused.
    async fn send_batch(&mut self, raws: &[Vec<u8>]) -> Result<()> {
        let requests: Vec<Value> = raws
            .iter()
            .enumerate()
            .map(|(id, raw)| {
                let (method, params) =
                    ("eth_sendRawTransaction", [format!("0x{}", hex::encode(raw))]);
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let response = self.post(serde_json::to_vec(&requests)?).await?;
        let answers = response.as_array().context("a batch answers with an array")?;
        if answers.len() != raws.len() {
            bail!("{} answers to a batch of {}", answers.len(), raws.len());
        }
        if let Some(error) = answers.iter().find_map(|a| a.get("error")) {
            bail!("eth_sendRawTransaction: {error}");
        }
        Ok(())
    }

    /// Waits until `method` answers non-null for `hash`.
    async fn wait_for(&mut self, method: &str, hash: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.call(method, json!([hash])).await;
            match answer {
                Ok(value) if !value.is_null() => return Ok(value),
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(_) => bail!("{method} {hash}: nothing after {timeout:?}"),
                Err(e) => return Err(e),
            }
        }
    }
}

fn hash_hex(hash: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(hash))
}

fn quantity(value: &Value) -> Result<u64> {
    let text = value.as_str().context("expected a hex quantity")?;
    u64::from_str_radix(text.trim_start_matches("0x"), 16).context("expected a hex quantity")
}

/// A deterministic key per index (not secret: bench accounts only).
fn sender_key(index: u64) -> Result<LocalKey> {
    let mut seed = coco_crypto::Sha256::new();
    seed.update(b"coco bench eth sender");
    seed.update(&index.to_be_bytes());
    Ok(LocalKey::from_hex(&seed.finish().to_hex())?)
}

struct Chain {
    chain_id: u64,
    token: [u8; 20],
}

/// The setup: deploy the token, fund the senders. Returns the chain id and token.
async fn set_up(rpc: &mut Rpc, args: &EthBenchArgs, senders: &[LocalKey]) -> Result<Chain> {
    let chain_id = quantity(&rpc.call("eth_chainId", json!([])).await?)?;
    let funder = LocalKey::from_hex(FUNDER)?;
    let from = funder.address().to_string();
    let mut nonce =
        quantity(&rpc.call("eth_getTransactionCount", json!([from, "pending"])).await?)?;
    let code = coco_evm::testdata::coco_token_creation_code([0xff; 32]); // supply 2^256 - 1
    let fees = |nonce, to, value, gas_limit, input| Eip1559 {
        chain_id,
        nonce,
        to,
        value,
        gas_limit,
        max_fee_per_gas: MAX_FEE,
        max_priority_fee_per_gas: TIP,
        input,
    };
    let (deploy, deploy_hash) = funder.sign_eip1559(&fees(nonce, None, 0, 2_000_000, code));
    nonce += 1;
    rpc.send_batch(&[deploy]).await?;
    let receipt = rpc
        .wait_for("eth_getTransactionReceipt", &hash_hex(&deploy_hash), Duration::from_secs(60))
        .await?;
    let token_hex =
        receipt["contractAddress"].as_str().context("the deploy created no contract")?;
    let token: [u8; 20] = hex::decode(token_hex.trim_start_matches("0x"))?
        .try_into()
        .ok()
        .context("a contract address has 20 bytes")?;
    let per_sender = args.txs / args.senders + 1;
    let gas_money = u128::from(per_sender) * u128::from(TRANSFER_GAS) * MAX_FEE + ETHER;
    let mut setup = Vec::new();
    for sender in senders {
        let to = sender.address().0.0;
        setup.push(funder.sign_eip1559(&fees(nonce, Some(to), gas_money, 21_000, Vec::new())));
        let tokens = coco_evm::testdata::transfer_input(&to, u128::from(per_sender) * 1_000);
        setup.push(funder.sign_eip1559(&fees(nonce + 1, Some(token), 0, TRANSFER_GAS, tokens)));
        nonce += 2;
    }
    for chunk in setup.chunks(100) {
        let raws: Vec<Vec<u8>> = chunk.iter().map(|(raw, _)| raw.clone()).collect();
        rpc.send_batch(&raws).await?;
    }
    if let Some((_, last)) = setup.last() {
        rpc.wait_for("eth_getTransactionReceipt", &hash_hex(last), Duration::from_secs(120))
            .await?;
    }
    Ok(Chain { chain_id, token })
}

/// Every sender's transfers, signed, in nonce order; and each sender's last hash.
fn sign_all(
    args: &EthBenchArgs,
    chain: &Chain,
    senders: &[(&LocalKey, u64)],
) -> Vec<(Vec<Vec<u8>>, [u8; 32])> {
    let per_sender = args.txs / args.senders;
    senders
        .iter()
        .enumerate()
        .map(|(index, (key, first_nonce))| {
            let mut sink = [0u8; 20];
            sink[..8].copy_from_slice(&(index as u64).to_be_bytes());
            sink[19] = 0x5e;
            let mut last = [0u8; 32];
            let raws = (*first_nonce..first_nonce + per_sender)
                .map(|nonce| {
                    let tx = Eip1559 {
                        chain_id: chain.chain_id,
                        nonce,
                        to: Some(chain.token),
                        value: 0,
                        gas_limit: TRANSFER_GAS,
                        max_fee_per_gas: MAX_FEE,
                        max_priority_fee_per_gas: TIP,
                        input: coco_evm::testdata::transfer_input(&sink, 1),
                    };
                    let (raw, hash) = key.sign_eip1559(&tx);
                    last = hash;
                    raw
                })
                .collect();
            (raws, last)
        })
        .collect()
}

/// The report.
struct Report {
    txs: u64,
    seconds: f64,
    sign_seconds: f64,
    batch_latency_us: coco_client::histogram::Histogram,
}

/// One connection's load: its senders' transactions interleaved in nonce order, in
/// batches. Returns each batch's latency (µs).
async fn drive(mut rpc: Rpc, mine: Vec<Vec<Vec<u8>>>, batch: usize) -> Result<Vec<u64>> {
    let longest = mine.iter().map(Vec::len).max().unwrap_or(0);
    let mut ordered = Vec::new();
    for round in 0..longest {
        ordered.extend(mine.iter().filter_map(|raws| raws.get(round).cloned()));
    }
    let mut latencies = Vec::new();
    for chunk in ordered.chunks(batch.max(1)) {
        let sent = Instant::now();
        rpc.send_batch(chunk).await?;
        latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok(latencies)
}

async fn bench(args: &EthBenchArgs) -> Result<Report> {
    if args.senders == 0 || args.connections == 0 || args.txs < args.senders {
        bail!("need at least one sender and one connection, and txs >= senders");
    }
    let target = Target::parse(args)?;
    let senders = (0..args.senders).map(sender_key).collect::<Result<Vec<_>>>()?;
    let mut control = target.connect().await?;
    let chain =
        set_up(&mut control, args, &senders).await.context("setting up the token and senders")?;
    // Senders are the same accounts run after run: start from their current nonces.
    let mut with_nonces = Vec::with_capacity(senders.len());
    for key in &senders {
        let address = key.address().to_string();
        let nonce = control.call("eth_getTransactionCount", json!([address, "pending"])).await?;
        with_nonces.push((key, quantity(&nonce)?));
    }
    let signing = Instant::now();
    let signed = sign_all(args, &chain, &with_nonces);
    let sign_seconds = signing.elapsed().as_secs_f64();
    let mut per_connection: Vec<Vec<Vec<Vec<u8>>>> =
        (0..args.connections).map(|_| Vec::new()).collect();
    let connections = per_connection.len();
    let mut lasts = Vec::new();
    for (index, (raws, last)) in signed.into_iter().enumerate() {
        per_connection[index % connections].push(raws);
        lasts.push(last);
    }
    let mut rpcs = Vec::new();
    for _ in 0..connections {
        rpcs.push(target.connect().await?);
    }
    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for (rpc, mine) in rpcs.into_iter().zip(per_connection) {
        workers.spawn(drive(rpc, mine, batch));
    }
    let batch_latency_us = coco_client::histogram::Histogram::new();
    while let Some(done) = workers.join_next().await {
        done??.into_iter().for_each(|micros| batch_latency_us.record(micros));
    }
    let final_method =
        if target.is_coco() { "coco_getTransactionReceipt" } else { "eth_getTransactionReceipt" };
    for last in &lasts {
        control.wait_for(final_method, &hash_hex(last), Duration::from_secs(300)).await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Report {
        txs: args.senders * (args.txs / args.senders),
        seconds,
        sign_seconds,
        batch_latency_us,
    })
}

pub(crate) fn run(args: &EthBenchArgs) -> Result<()> {
    coco_host::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(bench(args))?;
    let rate = report.txs as f64 / report.seconds;
    let l = &report.batch_latency_us;
    let (p50, p99) = (l.value_at_permille(500), l.value_at_permille(990));
    if args.json {
        let value = json!({
            "target": args.target, "txs": report.txs, "seconds": report.seconds,
            "final_tx_per_s": rate, "sign_seconds": report.sign_seconds,
            "batch": args.batch, "senders": args.senders, "connections": args.connections,
            "batch_latency_us": {"p50": p50, "p99": p99, "max": l.max()},
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "eth {}: {} ERC-20 transfers, {} senders, batches of {}, {} connections",
            args.target, report.txs, args.senders, args.batch, args.connections
        );
        println!("  signed in      {:.2} s (client side, not in the rate)", report.sign_seconds);
        println!("  final in       {:.2} s  ->  {rate:.0} tx/s", report.seconds);
        println!("  batch latency  p50 {p50} µs  p99 {p99} µs");
    }
    Ok(())
}
