//! The `coco` binary as a child process, and TLS clients to it.
//!
//! Every test owns a [`Workspace`] (a temporary directory holding the sandbox directory, the
//! node's logs and any copies) and runs nodes as [`NodeProcess`]es: the address is read from
//! the banner the binary prints, and the child is killed when the value is dropped, so a
//! failing test never leaves a node behind.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use coco_client::{Client, ClientConfig, ClientIdentity, Connection, Protocol, Response};
use coco_node::{NetworkConfig, NodeConfig, ServiceConfig, StorageConfig};
use coco_types::{Limits, TxId};
use serde_json::{Value, json};

/// The binary under test, built by cargo for this test target.
pub(crate) const COCO: &str = env!("CARGO_BIN_EXE_coco");

/// Longest a node may take to print its banner (first start creates keys and the service).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a node may take to stop after SIGTERM (final signature and flush).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a transaction may take to commit in these tests.
pub(crate) const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A temporary directory with the sandbox directory inside it; removed on drop.
pub(crate) struct Workspace {
    tmp: tempfile::TempDir,
    runs: u32,
}

impl Workspace {
    /// A fresh, empty workspace.
    pub(crate) fn new() -> Self {
        let tmp = tempfile::Builder::new().prefix("coco-e2e-").tempdir().expect("a temp dir");
        std::fs::create_dir_all(tmp.path().join("logs")).expect("a logs dir");
        Self { tmp, runs: 0 }
    }

    /// The root of the workspace (outside the sandbox directory).
    pub(crate) fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The sandbox directory, as given to `coco sandbox --dir`.
    pub(crate) fn sandbox(&self) -> PathBuf {
        self.tmp.path().join("sandbox")
    }

    /// The node's ledger directory inside the sandbox.
    pub(crate) fn ledger_dir(&self) -> PathBuf {
        self.sandbox().join("node0").join("ledger")
    }

    /// The node's configuration file inside the sandbox.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.sandbox().join("node0").join("config.toml")
    }

    /// Where a recovery test keeps its copy of a lost node's ledger.
    pub(crate) fn old_ledger_dir(&self) -> PathBuf {
        self.root().join("old_ledger")
    }

    /// The configuration of a node recovering the sandbox's service.
    pub(crate) fn recovered_config_file(&self) -> PathBuf {
        self.root().join("recovered").join("config.toml")
    }

    /// The recovering node's ledger directory.
    pub(crate) fn recovered_ledger_dir(&self) -> PathBuf {
        self.root().join("recovered").join("ledger")
    }

    /// The service certificate the sandbox writes, PEM.
    pub(crate) fn service_cert_pem(&self) -> String {
        let path = self.sandbox().join("service_cert.pem");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Prepares the sandbox directory as `coco sandbox` would, but with `limits`: the
    /// identities come from `coco keygen`, and `coco sandbox` reuses an existing
    /// `node0/config.toml`, so tests get short signature intervals and small chunks.
    pub(crate) fn prepare(&self, limits: Limits) {
        let dir = self.sandbox();
        for name in ["member0", "user0"] {
            let output = run_coco(&["keygen", "--name", name, "--dir", &dir.to_string_lossy()]);
            assert!(output.status.success(), "coco keygen {name}: {}", describe(&output));
        }
        let config = NodeConfig {
            network: NetworkConfig::loopback(0),
            storage: StorageConfig::under(Path::new(""), PathBuf::from("../service_cert.pem")),
            service: ServiceConfig {
                members: vec![PathBuf::from("../member0_cert.pem")],
                users: vec![PathBuf::from("../user0_cert.pem")],
                member_encryption_keys: vec![],
                recovery_threshold: 1,
            },
            limits,
            apps: [("eth".to_owned(), serde_json::json!({"dev_accounts": true}))].into(),
        };
        std::fs::create_dir_all(dir.join("node0")).expect("node0 dir");
        std::fs::write(self.config_file(), config.to_toml()).expect("config written");
    }

    /// Starts a node on the sandbox directory, its stderr going to a fresh log file.
    pub(crate) fn start(&mut self, launch: Launch) -> NodeProcess {
        self.try_start(launch).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts a node on the sandbox directory; an error (with the node's log) if it exits
    /// or stays silent instead of printing its banner.
    pub(crate) fn try_start(&mut self, launch: Launch) -> Result<NodeProcess> {
        self.runs += 1;
        let log = self.root().join("logs").join(format!("run{}.log", self.runs));
        NodeProcess::start(self, launch, &log)
    }
}

/// Limits for tests: signatures every 20 ms so commits are quick.
pub(crate) fn quick_limits() -> Limits {
    Limits { sig_ms_interval: 20, ..Limits::default() }
}

/// How a node is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    /// `coco sandbox --dir D --port 0`.
    Sandbox,
    /// `coco node start --config D/node0/config.toml` (the config must listen on port 0).
    NodeStart,
    /// `coco node recover --config <recovered config> --ledger <old ledger copy>`.
    Recover,
    /// `coco node start --config <recovered config>`: the recovered node restarting.
    RestartRecovered,
}

/// Who a client is to the node.
#[derive(Clone, Debug)]
pub(crate) enum Who {
    /// The sandbox's `user0`.
    User,
    /// No client certificate at all.
    Anonymous,
    /// The identity in `<dir>/<name>_cert.pem` and `<dir>/<name>_privk.pem`.
    Named(PathBuf, String),
}

/// A running `coco` process, killed (SIGKILL) on drop if it is still running.
pub(crate) struct NodeProcess {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
}

impl NodeProcess {
    fn start(workspace: &Workspace, launch: Launch, log: &Path) -> Result<Self> {
        let dir = workspace.sandbox();
        let mut command = Command::new(COCO);
        let banner = match launch {
            Launch::Sandbox => {
                command.args(["sandbox", "--port", "0", "--dir"]).arg(&dir);
                "Coco sandbox is running: https://"
            }
            Launch::NodeStart => {
                command.args(["node", "start", "--config"]).arg(workspace.config_file());
                "node listening on https://"
            }
            Launch::Recover => {
                command
                    .args(["node", "recover", "--config"])
                    .arg(workspace.recovered_config_file());
                command.arg("--ledger").arg(workspace.old_ledger_dir());
                "recovering node listening on https://"
            }
            Launch::RestartRecovered => {
                command.args(["node", "start", "--config"]).arg(workspace.recovered_config_file());
                "node listening on https://"
            }
        };
        Self::spawn(command, banner, &dir, log)
    }

    /// Runs `command` (a `coco` invocation) with stderr to `log`, and waits for the line
    /// starting with `banner` followed by the node's address. `dir` holds the
    /// `service_cert.pem` clients trust.
    pub(crate) fn spawn(
        mut command: Command,
        banner: &str,
        dir: &Path,
        log: &Path,
    ) -> Result<Self> {
        let dir = dir.to_owned();
        let stderr = std::fs::File::create(log).context("creating the node log")?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {COCO}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (lines, banner_lines) = mpsc::channel();
        // Reads stdout to its end so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    // Nobody listens any more; keep draining.
                }
            }
        });
        let mut node =
            Self { child, addr: SocketAddr::from(([0, 0, 0, 0], 0)), dir, log: log.into() };
        node.addr = node.wait_for_banner(&banner_lines, banner)?;
        Ok(node)
    }

    fn wait_for_banner(
        &mut self,
        lines: &mpsc::Receiver<String>,
        banner: &str,
    ) -> Result<SocketAddr> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(addr) = line.trim().strip_prefix(banner) {
                        return addr.parse().with_context(|| format!("banner address in {line:?}"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    bail!("coco exited ({status}) before its banner; log:\n{}", self.log_text());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("coco exited ({status}) before its banner; log:\n{}", self.log_text());
            }
            if Instant::now() >= deadline {
                bail!("no banner after {START_TIMEOUT:?}; log:\n{}", self.log_text());
            }
        }
    }

    /// The node's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the node wrote to stderr so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the node with SIGTERM and requires a clean exit (status 0) in time.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(
                    status.success(),
                    "node exited with {status} after SIGTERM; log:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(Instant::now() < deadline, "node still running {STOP_TIMEOUT:?} after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`…) to the node: a stopped node is cut off from the
    /// others as by a partition, and picks up where it was when continued.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
        assert!(status.expect("kill runs").success(), "kill -{signal} {pid} failed");
    }

    /// Kills the node with SIGKILL (`kill -9`): no final signature, no flush.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("killed child reaped");
    }

    /// A TLS connection (HTTP/2) to the node as `who`.
    pub(crate) async fn connect(&self, who: &Who) -> Connection {
        self.try_connect(who, Protocol::Http2).await.unwrap_or_else(|e| panic!("connect: {e:#}"))
    }

    /// A TLS connection to the node as `who`, speaking `protocol`.
    pub(crate) async fn try_connect(&self, who: &Who, protocol: Protocol) -> Result<Connection> {
        let service = std::fs::read_to_string(self.dir.join("service_cert.pem"))?;
        let identity = match who {
            Who::User => Some(load_identity(&self.dir, "user0")?),
            Who::Anonymous => None,
            Who::Named(dir, name) => Some(load_identity(dir, name)?),
        };
        let config = ClientConfig::new(&service, identity.as_ref())?;
        Ok(Client::new(config).connect(self.addr, protocol).await?)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn load_identity(dir: &Path, name: &str) -> Result<ClientIdentity> {
    let cert_pem = std::fs::read_to_string(dir.join(format!("{name}_cert.pem")))?;
    let key_pem = std::fs::read_to_string(dir.join(format!("{name}_privk.pem")))?;
    Ok(ClientIdentity { cert_pem, key_pem })
}

/// Runs `coco` with `args` to completion.
pub(crate) fn run_coco(args: &[&str]) -> Output {
    Command::new(COCO).args(args).stdin(Stdio::null()).output().expect("coco runs")
}

/// Exit status, stdout and stderr of a finished process, for assertion messages.
pub(crate) fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `{"id", "msg"}` to `path` and returns the TxId of the write.
pub(crate) async fn post_record(
    conn: &mut Connection,
    path: &str,
    id: u64,
    msg: &str,
) -> Result<TxId> {
    let response = conn.post_json(path, &json!({"id": id, "msg": msg})).await?;
    ensure!(
        response.status == 200,
        "POST {path} id {id}: {} {}",
        response.status,
        body_text(&response)
    );
    ensure!(response.body.as_ref() == b"true", "POST {path} answered {}", body_text(&response));
    Ok(response.tx_id()?)
}

/// Reads record `id` of `map` (`private` or `public`): `None` if it does not exist.
pub(crate) async fn get_record(
    conn: &mut Connection,
    map: &str,
    id: u64,
) -> Result<Option<String>> {
    let response = conn.get(&format!("/app/log/{map}?id={id}")).await?;
    if response.status == 404 {
        expect_error(&response, 404, "ResourceNotFound");
        return Ok(None);
    }
    ensure!(response.status == 200, "GET {map} {id}: {} {}", response.status, body_text(&response));
    let body: Value = serde_json::from_slice(&response.body)?;
    ensure!(body["id"] == json!(id), "GET {map} {id} answered {body}");
    let msg = body["msg"].as_str().ok_or_else(|| anyhow!("no msg in {body}"))?;
    Ok(Some(msg.to_owned()))
}

/// Requires `response` to be an error with `status` and `code` in CCF's error shape
/// (`{"error": {"code", "message"}}` with a non-empty message).
pub(crate) fn expect_error(response: &Response, status: u16, code: &str) {
    if let Err(problem) = check_error(response, status, code) {
        panic!("{problem}");
    }
}

/// Whether `response` is an error with `status` and `code` in CCF's error shape; the
/// difference, described, if not.
pub(crate) fn check_error(response: &Response, status: u16, code: &str) -> Result<(), String> {
    let text = body_text(response);
    let got = response.status.as_u16();
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("{got} with a body that is not JSON ({e}): {text:?}"))?;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    if got != status || body["error"]["code"] != json!(code) || message.is_empty() {
        return Err(format!("expected {status} {code}, got {got} {text}"));
    }
    Ok(())
}

/// The body as text, for messages.
pub(crate) fn body_text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The value of counter or gauge `name` in `/node/metrics`.
pub(crate) async fn metric(conn: &mut Connection, name: &str) -> u64 {
    let response = conn.get("/node/metrics").await.expect("GET /node/metrics");
    assert_eq!(response.status, 200, "{}", body_text(&response));
    let text = body_text(&response);
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// Transactions ordered that are not signatures: what a refused request must not move.
pub(crate) async fn app_txs_ordered(conn: &mut Connection) -> u64 {
    metric(conn, "coco_txs_ordered_total").await - metric(conn, "coco_signatures_total").await
}

/// One record to write.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// `private` or `public`.
    pub(crate) map: &'static str,
    /// The record id.
    pub(crate) id: u64,
    /// The message.
    pub(crate) msg: String,
}

impl Record {
    /// The POST path for this record; `blocking` waits for commit.
    pub(crate) fn path(&self, blocking: bool) -> String {
        if blocking {
            format!("/app/log/blocking/{}", self.map)
        } else {
            format!("/app/log/{}", self.map)
        }
    }
}

/// Writes `records` over `connections` concurrent HTTP/2 connections as `user0`, and
/// returns each record with the TxId of its write, in the order given.
pub(crate) async fn write_all(
    node: &NodeProcess,
    records: &[Record],
    connections: usize,
    blocking: bool,
) -> Vec<(Record, TxId)> {
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..connections {
        let mut conn = node.connect(&Who::User).await;
        let mine: Vec<(usize, Record)> =
            records.iter().cloned().enumerate().skip(lane).step_by(connections).collect();
        tasks.spawn(async move {
            let mut done = Vec::with_capacity(mine.len());
            for (index, record) in mine {
                let tx = post_record(&mut conn, &record.path(blocking), record.id, &record.msg)
                    .await
                    .unwrap_or_else(|e| panic!("writing {record:?}: {e:#}"));
                done.push((index, record, tx));
            }
            done
        });
    }
    let mut written: Vec<(usize, Record, TxId)> = Vec::with_capacity(records.len());
    while let Some(lane) = tasks.join_next().await {
        written.extend(lane.expect("writer task"));
    }
    written.sort_by_key(|(index, _, _)| *index);
    written.into_iter().map(|(_, record, tx)| (record, tx)).collect()
}

/// Waits until `tx` is committed, polling `/node/tx`.
pub(crate) async fn wait_committed(conn: &mut Connection, tx: TxId) {
    conn.wait_for_commit(tx, COMMIT_TIMEOUT).await.unwrap_or_else(|e| panic!("{tx}: {e:#}"));
}

/// A random lowercase hex string of 32 characters (std's hasher keys are random per
/// process; mixing in the time and a counter makes successive calls differ).
pub(crate) fn random_hex() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let state = std::collections::hash_map::RandomState::new();
    let mut words = [0_u64; 2];
    for (index, word) in words.iter_mut().enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(index);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *word = hasher.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

/// Copies directory `from` (files only, recursively) to `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy target");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every regular file under `dir`, recursively, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read_dir") {
            let entry = entry.expect("dir entry");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// Names of the ledger chunk files in `dir` ending in `.committed`, in seqno order.
pub(crate) fn committed_chunks(dir: &Path) -> Vec<PathBuf> {
    let mut chunks: Vec<(u64, PathBuf)> = files_under(dir)
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let range = name.strip_prefix("ledger_")?.strip_suffix(".committed")?;
            let start = range.split('-').next()?.parse().ok()?;
            Some((start, path))
        })
        .collect();
    chunks.sort();
    chunks.into_iter().map(|(_, path)| path).collect()
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The first offset of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}
