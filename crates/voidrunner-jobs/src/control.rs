//! The in-job interface: a Unix socket in the job's workspace through which a running step
//! talks to the service — registers secrets (masked from then on in every layer that masks
//! with the job's [`SecretRegistry`]), records outputs that later steps and the job result
//! read, and attaches artifacts.
//!
//! Wire format (both directions): a 4-byte big-endian length, then that many bytes of JSON,
//! at most [`MAX_MESSAGE`]. Every request carries the job's token (given to steps in
//! `VOIDRUNNER_JOB_TOKEN`); a request with another token — e.g. from another job — is
//! refused, compared in constant time. Requests:
//!
//! | `op` | fields | answer |
//! |---|---|---|
//! | `ping` | | `{"ok":true}` |
//! | `register_secret` | `values: [string]` | `{"ok":true,"registered":n}` (new values) |
//! | `set_output` | `key`, `value` | `{"ok":true}` |
//! | `get_output` | `key` | `{"ok":true,"value":string\|null}` |
//! | `outputs` | | `{"ok":true,"outputs":{key:value}}` |
//! | `attach_artifact` | `path` (relative to `/job`) | `{"ok":true,"path":normalized}` |
//! | `trigger_jobs` | `payload` (see [`crate::link`]) | `{"ok":true,"nodes":[…],"duplicate":bool}` |
//! | `is_job_running` | `job_name` | `{"ok":true,"found":bool,"running":bool,"status":…}` |
//! | `get_job_result` | `job_name` | `{"ok":true,"found":bool,"status":…,"job_id":…,"outputs":{…}}` |
//!
//! `get_output` answers the job's own outputs first, then, for a job run as a workflow node,
//! the outputs of finished nodes (`<node>.<key>`). The three workflow ops need the job's
//! [`WorkflowLink`]; without one they answer an error.
//!
//! Errors answer `{"ok":false,"error":"…"}`; a malformed frame closes the connection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use voidrunner_mask::SecretRegistry;

use crate::link::{WorkflowContext, WorkflowLink};
use crate::path::workspace_relative;
use crate::trigger::parse_trigger;

/// Largest frame in bytes.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Most outputs one job may record.
pub const MAX_OUTPUTS: usize = 256;
/// Largest output value in bytes.
pub const MAX_OUTPUT_VALUE: usize = 64 * 1024;

/// What the steps of one job shared through the socket.
#[derive(Debug, Default)]
pub struct JobState {
    outputs: Mutex<BTreeMap<String, String>>,
    artifacts: Mutex<Vec<String>>,
}

impl JobState {
    /// The recorded outputs.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        self.outputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Artifacts attached by steps (normalized, relative to `/job`).
    pub fn artifacts(&self) -> Vec<String> {
        self.artifacts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The socket of one job.
#[derive(Debug)]
pub struct ControlServer {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The workflow side of a job's socket: the frozen context (whose outputs `get_output`
/// falls back to) and the link the workflow ops go to. Default: a job outside any workflow.
#[derive(Debug, Clone, Default)]
pub struct ControlWorkflow {
    /// The job's workflow facts.
    pub context: Option<WorkflowContext>,
    /// Where `trigger_jobs`, `is_job_running` and `get_job_result` go.
    pub link: Option<Arc<dyn WorkflowLink>>,
}

struct Ctx {
    token: String,
    registry: SecretRegistry,
    state: Arc<JobState>,
    root: PathBuf,
    workflow: ControlWorkflow,
}

impl ControlServer {
    /// Listens at `socket` (mode 0666 inside the job-private workspace, so the sandboxed uid
    /// can connect; the token is what authenticates). `root` is the host path of `/job`, for
    /// checking attached artifacts.
    pub fn start(
        socket: &Path,
        token: String,
        registry: SecretRegistry,
        state: Arc<JobState>,
        root: &Path,
    ) -> std::io::Result<ControlServer> {
        Self::start_with(
            socket,
            token,
            registry,
            state,
            root,
            ControlWorkflow::default(),
        )
    }

    /// [`ControlServer::start`] for a job run as a workflow node: `workflow` answers the
    /// workflow ops.
    pub fn start_with(
        socket: &Path,
        token: String,
        registry: SecretRegistry,
        state: Arc<JobState>,
        root: &Path,
        workflow: ControlWorkflow,
    ) -> std::io::Result<ControlServer> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let ctx = Arc::new(Ctx {
            token,
            registry,
            state,
            root: root.to_path_buf(),
            workflow,
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &ctx).await;
                });
            }
        });
        Ok(ControlServer {
            task,
            path: socket.to_path_buf(),
        })
    }
}

async fn read_frame(stream: &mut UnixStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame(stream: &mut UnixStream, value: &Value) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(&bytes).await
}

async fn serve(mut stream: UnixStream, ctx: &Ctx) -> std::io::Result<()> {
    while let Some(frame) = read_frame(&mut stream).await? {
        let answer = match serde_json::from_slice::<Request>(&frame) {
            Ok(req) => handle(req, ctx).await,
            Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
        };
        write_frame(&mut stream, &answer).await?;
    }
    Ok(())
}

/// One request.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    token: String,
    #[serde(flatten)]
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Ping,
    RegisterSecret { values: Vec<String> },
    SetOutput { key: String, value: String },
    GetOutput { key: String },
    Outputs,
    AttachArtifact { path: String },
    TriggerJobs { payload: Value },
    IsJobRunning { job_name: String },
    GetJobResult { job_name: String },
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn fail(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

async fn handle(req: Request, ctx: &Ctx) -> Value {
    if !same_token(&req.token, &ctx.token) {
        return fail("unauthorized: not this job's token");
    }
    match req.op {
        Op::Ping => json!({"ok": true}),
        Op::RegisterSecret { values } => {
            let mut registered = 0;
            for v in values.iter().filter(|v| !v.is_empty()) {
                match ctx.registry.register(v) {
                    Ok(true) => registered += 1,
                    Ok(false) => {}
                    // The error names the rule, never the value.
                    Err(e) => return fail(format!("secret refused: {e}")),
                }
            }
            json!({"ok": true, "registered": registered})
        }
        Op::SetOutput { key, value } => {
            if !valid_key(&key) {
                return fail("output keys are 1–128 characters of [A-Za-z0-9_.-]");
            }
            if value.len() > MAX_OUTPUT_VALUE {
                return fail(format!(
                    "output values are at most {MAX_OUTPUT_VALUE} bytes"
                ));
            }
            let mut outputs = ctx
                .state
                .outputs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if outputs.len() >= MAX_OUTPUTS && !outputs.contains_key(&key) {
                return fail(format!("at most {MAX_OUTPUTS} outputs"));
            }
            outputs.insert(key, value);
            json!({"ok": true})
        }
        Op::GetOutput { key } => {
            let own = ctx
                .state
                .outputs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned();
            let value = own.or_else(|| {
                ctx.workflow
                    .context
                    .as_ref()
                    .and_then(|c| c.outputs.get(&key).cloned())
            });
            json!({"ok": true, "value": value})
        }
        Op::Outputs => json!({"ok": true, "outputs": ctx.state.outputs()}),
        Op::AttachArtifact { path } => match attach(ctx, &path) {
            Ok(rel) => json!({"ok": true, "path": rel}),
            Err(e) => fail(e),
        },
        Op::TriggerJobs { payload } => {
            let Some(link) = &ctx.workflow.link else {
                return fail(NO_LINK);
            };
            let payload = match parse_trigger(&payload) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            match link.trigger(payload).await {
                Ok(a) => json!({"ok": true, "nodes": a.nodes, "duplicate": a.duplicate}),
                Err(e) => fail(e),
            }
        }
        Op::IsJobRunning { job_name } | Op::GetJobResult { job_name } => {
            let Some(link) = &ctx.workflow.link else {
                return fail(NO_LINK);
            };
            match link.node(&job_name).await {
                Ok(None) => json!({"ok": true, "found": false, "running": false,
                                   "status": null, "job_id": null, "outputs": {}}),
                Ok(Some(n)) => json!({
                    "ok": true, "found": true,
                    "running": matches!(n.status.as_str(), "pending" | "queued" | "running"),
                    "status": n.status, "job_id": n.job_id, "outputs": n.outputs,
                }),
                Err(e) => fail(e),
            }
        }
    }
}

const NO_LINK: &str = "this job is not part of a workflow (no follow-up jobs here)";

/// The path must name an existing regular file inside the workspace, reached without any
/// symlink (a step could plant one pointing at a host file).
fn attach(ctx: &Ctx, path: &str) -> Result<String, String> {
    let rel = workspace_relative(path).map_err(|e| format!("artifact path {e}"))?;
    let mut at = ctx.root.clone();
    for part in rel.split('/') {
        at.push(part);
        let meta = at
            .symlink_metadata()
            .map_err(|_| format!("artifact {rel} does not exist"))?;
        if meta.file_type().is_symlink() {
            return Err(format!("artifact {rel} goes through a symlink"));
        }
    }
    if !at.is_file() {
        return Err(format!("artifact {rel} is not a regular file"));
    }
    let mut artifacts = ctx
        .state
        .artifacts
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !artifacts.contains(&rel) {
        artifacts.push(rel.clone());
    }
    Ok(rel)
}

/// A client, for `voidrunner job ctl` and tests.
pub async fn request(socket: &Path, token: &str, op: Value) -> std::io::Result<Value> {
    let mut stream = UnixStream::connect(socket).await?;
    let mut body = op;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("token".into(), Value::String(token.to_owned()));
    }
    write_frame(&mut stream, &body).await?;
    read_frame(&mut stream)
        .await?
        .ok_or_else(|| std::io::Error::other("the job closed the socket"))
        .and_then(|b| serde_json::from_slice(&b).map_err(std::io::Error::other))
}
