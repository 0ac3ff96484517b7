//! `coco gov`: act as a member over `/gov` — propose, vote, withdraw, acknowledge the state
//! digest — and read proposals and the constitution. Every answer is printed as pretty JSON;
//! a node's refusal exits non-zero with `error: <code>: <message>`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use coco_client::{Client, ClientConfig, Connection, GovClient, MemberSigner, Protocol};
use serde_json::{Value, json};

/// Arguments of `coco gov`.
#[derive(clap::Args)]
pub(crate) struct GovArgs {
    #[command(subcommand)]
    command: GovCommand,
    /// The node, e.g. `127.0.0.1:8000` (`https://` is accepted and ignored).
    #[arg(long, global = true, default_value = "127.0.0.1:8000")]
    address: String,
    /// Sandbox directory holding `service_cert.pem` and the member's PEM files.
    #[arg(long, global = true, default_value = "sandbox")]
    dir: PathBuf,
    /// The member to sign as: `<dir>/<member>_cert.pem` and `<dir>/<member>_privk.pem`.
    #[arg(long, global = true, default_value = "member0")]
    member: String,
    /// The member certificate, instead of the one `--member` names.
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// The member private key (PKCS#8 PEM), instead of the one `--member` names.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// The service certificate, instead of `<dir>/service_cert.pem`.
    #[arg(long, global = true)]
    service_cert: Option<PathBuf>,
}

/// The `coco gov` subcommands.
#[derive(clap::Subcommand)]
enum GovCommand {
    /// Propose the actions in FILE (`{"actions": [{"name", "args"}]}`; `-` reads stdin).
    Propose {
        /// The proposal JSON file, or `-`.
        file: PathBuf,
    },
    /// Vote on a proposal: accept, reject, or submit a JavaScript ballot.
    #[command(group(clap::ArgGroup::new("choice").required(true)))]
    Vote {
        /// The proposal id.
        id: String,
        /// Vote for the proposal.
        #[arg(long, group = "choice")]
        accept: bool,
        /// Vote against the proposal.
        #[arg(long, group = "choice")]
        reject: bool,
        /// A ballot script exporting `vote(proposal, proposerId)` (`-` reads stdin).
        #[arg(long, group = "choice")]
        ballot: Option<PathBuf>,
    },
    /// Withdraw a proposal this member made.
    Withdraw {
        /// The proposal id.
        id: String,
    },
    /// Fetch and acknowledge the state digest (an Accepted member becomes Active).
    Ack,
    /// List every proposal.
    List,
    /// Show one proposal.
    Show {
        /// The proposal id.
        id: String,
    },
    /// Show the actions of one proposal.
    Actions {
        /// The proposal id.
        id: String,
    },
    /// Show the constitution.
    Constitution,
    /// Disaster recovery, as a recovery member.
    #[command(subcommand)]
    Recovery(RecoveryCommand),
}

/// The `coco gov recovery` subcommands.
#[derive(clap::Subcommand)]
enum RecoveryCommand {
    /// Fetch this member's encrypted recovery share from a recovering service, decrypt it
    /// locally with the member's encryption key and submit it.
    SubmitShare {
        /// The member's RSA private key (PEM), instead of `<dir>/<member>_enc_privk.pem`.
        #[arg(long)]
        encryption_key: Option<PathBuf>,
    },
}

pub(crate) fn run(args: &GovArgs) -> Result<()> {
    // Inputs and the member's identity are read before connecting, so a missing file fails
    // without network traffic.
    let request = match &args.command {
        GovCommand::Propose { file } => {
            let text = read_input(file)?;
            let proposal = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            Request::Signed(Box::new(load_signer(args)?), Signed::Propose(proposal))
        }
        GovCommand::Vote { id, accept, ballot, .. } => {
            let script = match ballot {
                Some(file) => read_input(file)?,
                None => coco_client::vote_script(*accept),
            };
            Request::Signed(Box::new(load_signer(args)?), Signed::Ballot(id.clone(), script))
        }
        GovCommand::Withdraw { id } => {
            Request::Signed(Box::new(load_signer(args)?), Signed::Withdraw(id.clone()))
        }
        GovCommand::Ack => Request::Signed(Box::new(load_signer(args)?), Signed::Ack),
        GovCommand::List => Request::List,
        GovCommand::Show { id } => Request::Show(id.clone()),
        GovCommand::Actions { id } => Request::Actions(id.clone()),
        GovCommand::Constitution => Request::Constitution,
        GovCommand::Recovery(RecoveryCommand::SubmitShare { encryption_key }) => {
            let member = &args.member;
            let path = encryption_key
                .clone()
                .unwrap_or_else(|| args.dir.join(format!("{member}_enc_privk.pem")));
            let key = coco_crypto::RsaPrivateKey::from_pem(&read_file(&path)?)
                .with_context(|| format!("loading the encryption key {}", path.display()))?;
            Request::Signed(Box::new(load_signer(args)?), Signed::SubmitShare(Box::new(key)))
        }
    };
    coco_host::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let value = runtime.block_on(execute(args, request)).map_err(node_error)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// What to send, with every input already read.
enum Request {
    Signed(Box<MemberSigner>, Signed),
    List,
    Show(String),
    Actions(String),
    Constitution,
}

/// A request signed by the member.
enum Signed {
    Propose(Value),
    Ballot(String, String),
    Withdraw(String),
    Ack,
    SubmitShare(Box<coco_crypto::RsaPrivateKey>),
}

async fn execute(args: &GovArgs, request: Request) -> Result<Value> {
    let mut conn = connect(args).await?;
    Ok(match request {
        Request::List => coco_client::gov::list_proposals(&mut conn).await?,
        Request::Show(id) => coco_client::gov::proposal(&mut conn, &id).await?,
        Request::Actions(id) => coco_client::gov::proposal_actions(&mut conn, &id).await?,
        Request::Constitution => coco_client::gov::constitution(&mut conn).await?,
        Request::Signed(signer, signed) => {
            let mut gov = GovClient::with_signer(conn, *signer, now_s);
            match signed {
                Signed::Propose(proposal) => gov.propose(&proposal).await?,
                Signed::Ballot(id, script) => gov.ballot(&id, &script).await?,
                Signed::Withdraw(id) => gov.withdraw(&id).await?,
                Signed::Ack => ack(&mut gov).await?,
                Signed::SubmitShare(key) => gov.submit_recovery_share(&key).await?,
            }
        }
    })
}

/// Fetches and acknowledges the state digest; reports the digest acknowledged.
async fn ack(gov: &mut GovClient) -> Result<Value> {
    let digest = gov.update_state_digest().await?;
    let state_digest = digest["stateDigest"]
        .as_str()
        .ok_or_else(|| anyhow!("the node issued no stateDigest: {digest}"))?;
    gov.ack_state_digest(state_digest).await?;
    Ok(json!({"memberId": gov.member_id(), "stateDigest": state_digest, "acked": true}))
}

async fn connect(args: &GovArgs) -> Result<Connection> {
    let addr = args.address.trim_start_matches("https://").trim_end_matches('/');
    let addr = addr.parse().with_context(|| format!("address {addr:?} is not IP:PORT"))?;
    let service_path =
        args.service_cert.clone().unwrap_or_else(|| args.dir.join("service_cert.pem"));
    let service = read_file(&service_path)?;
    // Governance requests are signed, so the TLS session needs no client certificate.
    let config = ClientConfig::new(&service, None)?;
    Ok(Client::new(config).connect(addr, Protocol::Http2).await?)
}

fn load_signer(args: &GovArgs) -> Result<MemberSigner> {
    let member = &args.member;
    let cert = args.cert.clone().unwrap_or_else(|| args.dir.join(format!("{member}_cert.pem")));
    let key = args.key.clone().unwrap_or_else(|| args.dir.join(format!("{member}_privk.pem")));
    MemberSigner::from_pem(&read_file(&key)?, &read_file(&cert)?)
        .with_context(|| format!("loading member {} / {}", cert.display(), key.display()))
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A file's text, or stdin's for `-`.
fn read_input(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
        return Ok(text);
    }
    read_file(path)
}

/// A node's refusal as `<code>: <message>`; other errors unchanged.
fn node_error(error: anyhow::Error) -> anyhow::Error {
    let Some(coco_client::Error::Status { status, code, message }) =
        error.downcast_ref::<coco_client::Error>()
    else {
        return error;
    };
    if code.is_empty() { anyhow!("HTTP {status}: {message}") } else { anyhow!("{code}: {message}") }
}

/// The current unix time in seconds, for `ccf.gov.msg.created_at`.
pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
