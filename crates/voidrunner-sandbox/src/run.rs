//! [`Sandbox::run`]: the async side of a run. It starts the helper process, sends the
//! request, turns output frames into [`OutputChunk`]s and forwards cancellation.
//!
//! Dropping the returned future closes the helper's stdin; the helper then kills the
//! sandbox, removes its cgroup and exits (no process or cgroup is left behind).

use crate::error::SandboxError;
use crate::limits::Limits;
use crate::protocol::{
    CMD_CANCEL, CMD_STDIN, CMD_STDIN_EOF, HEADER_LEN, HelperRequest, MAX_STDIN_COMMAND,
    OutputChunk, RunResult, Stream, TAG_RESULT, TAG_STDERR, TAG_STDOUT, decode_header,
};
use crate::sandbox::Sandbox;
use crate::workspace::Workspace;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One program to run in the sandbox.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// `argv[0]` is an absolute path inside the sandbox, e.g. `/usr/bin/python3`.
    pub argv: Vec<String>,
    /// The whole environment (nothing is inherited from the service).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub cwd: String,
    /// Bytes fed to the program's stdin (then EOF); `None` = empty stdin.
    pub stdin: Option<Vec<u8>>,
    /// Shared workspace mounted read-write at `/work`; `None` = a fresh tmpfs per run.
    pub workspace: Option<Arc<Workspace>>,
    /// Where the workspace is mounted: `/work` (default) or `/job` (CI jobs). Other values
    /// are refused.
    pub workspace_target: Option<String>,
    /// Subdirectories of the workspace (single names, e.g. `ci`) mounted read-only.
    pub workspace_readonly: Vec<String>,
    /// Limits of this run (clamped to the operator maxima).
    pub limits: Limits,
}

impl RunSpec {
    /// `argv` with a minimal environment (`PATH`, `HOME=/work`, `LANG=C.UTF-8`), cwd `/work`
    /// and default limits.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: [
                ("PATH", "/usr/local/bin:/usr/bin:/bin"),
                ("HOME", "/work"),
                ("LANG", "C.UTF-8"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            cwd: "/work".to_owned(),
            stdin: None,
            workspace: None,
            workspace_target: None,
            workspace_readonly: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// An idle helper process (the pool lives in [`Sandbox`]).
#[derive(Debug)]
pub(crate) struct HelperProc {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    /// Helper diagnostics (stderr), read until the helper exits.
    diag: tokio::task::JoinHandle<String>,
}

/// Idle helpers kept for reuse; more are started on demand under higher concurrency.
const MAX_IDLE_HELPERS: usize = 16;

impl Sandbox {
    fn spawn_helper(&self) -> Result<HelperProc, SandboxError> {
        let helper = &self.config.helper;
        let mut child = tokio::process::Command::new(&helper.program)
            .args(&helper.args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| SandboxError::SpawnHelper {
                program: helper.program.clone(),
                source,
            })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Helper("helper pipes missing".into()));
        };
        let diag = tokio::spawn(async move {
            let mut s = Vec::new();
            let _ = (&mut stderr).take(64 << 10).read_to_end(&mut s).await;
            String::from_utf8_lossy(&s).into_owned()
        });
        Ok(HelperProc {
            child,
            stdin,
            stdout: BufReader::with_capacity(128 << 10, stdout),
            diag,
        })
    }

    /// An idle helper from the pool (skipping any that died while idle), or a new one.
    fn take_helper(&self) -> Result<HelperProc, SandboxError> {
        loop {
            let idle = self.helpers.lock().ok().and_then(|mut pool| pool.pop());
            let Some(mut h) = idle else {
                return self.spawn_helper();
            };
            if matches!(h.child.try_wait(), Ok(None)) {
                return Ok(h);
            }
        }
    }

    fn return_helper(&self, h: HelperProc) {
        if let Ok(mut pool) = self.helpers.lock()
            && pool.len() < MAX_IDLE_HELPERS
        {
            pool.push(h);
        }
    }

    /// Runs one program. Output chunks are sent on `output` as they are produced (a dropped
    /// receiver is ignored). Never panics on program misbehaviour; a broken helper is `Err`,
    /// a sandbox setup failure is [`crate::SandboxVerdict::SandboxError`].
    ///
    /// Dropping the future closes the helper's stdin: the helper kills the sandbox, removes
    /// its cgroup and exits (it is not reused).
    pub async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<OutputChunk>,
        cancel: CancellationToken,
    ) -> Result<RunResult, SandboxError> {
        self.run_inner(spec, output, None, cancel).await
    }

    /// Like [`Sandbox::run`], for an interactive program: after `spec.stdin`, its stdin stays
    /// open and every chunk received on `stdin` is appended to it while it runs; the channel
    /// closing (all senders dropped) closes the program's stdin (EOF). Chunks are written to
    /// the program without ever blocking its supervision: a program that does not read just
    /// leaves them pending (bounded by the helper).
    pub async fn run_with_stdin(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<OutputChunk>,
        stdin: mpsc::Receiver<Vec<u8>>,
        cancel: CancellationToken,
    ) -> Result<RunResult, SandboxError> {
        self.run_inner(spec, output, Some(stdin), cancel).await
    }

    async fn run_inner(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<OutputChunk>,
        mut input: Option<mpsc::Receiver<Vec<u8>>>,
        cancel: CancellationToken,
    ) -> Result<RunResult, SandboxError> {
        let req = HelperRequest {
            stdin_open: input.is_some(),
            argv: spec.argv,
            env: spec.env,
            cwd: spec.cwd,
            stdin_len: spec.stdin.as_ref().map(|s| s.len() as u64),
            workspace: spec.workspace.as_ref().map(|w| w.path().to_path_buf()),
            workspace_target: spec.workspace_target,
            workspace_readonly: spec.workspace_readonly,
            limits: spec.limits.clamped_to(&self.config.max),
            uid: self.config.uid,
            gid: self.config.gid,
            root_mount: self.root_mount.clone(),
            root: self.root.clone(),
            cgroup: self.cgroup.clone(),
            landlock: self.landlock,
        };
        let mut line = serde_json::to_vec(&req)
            .map_err(|e| SandboxError::Helper(format!("encode request: {e}")))?;
        line.push(b'\n');
        let HelperProc {
            mut child,
            mut stdin,
            stdout,
            diag,
        } = self.take_helper()?;
        let mut reader = tokio::spawn(read_frames(stdout, output));
        // A write error means the helper died; the missing result reports it below.
        if stdin.write_all(&line).await.is_ok()
            && let Some(data) = &spec.stdin
        {
            let _ = stdin.write_all(data).await;
        }
        let mut cancel_sent = false;
        let frames = loop {
            tokio::select! {
                r = &mut reader => break r,
                () = cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    let _ = stdin.write_all(&[CMD_CANCEL]).await;
                }
                chunk = next_input(&mut input) => {
                    let mut command = Vec::new();
                    match chunk {
                        Some(data) => {
                            for part in data.chunks(MAX_STDIN_COMMAND) {
                                command.push(CMD_STDIN);
                                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                                command.extend_from_slice(&len.to_le_bytes());
                                command.extend_from_slice(part);
                            }
                        }
                        None => {
                            input = None;
                            command.push(CMD_STDIN_EOF);
                        }
                    }
                    let _ = stdin.write_all(&command).await;
                }
            }
        };
        let (stdout, result) =
            frames.map_err(|e| SandboxError::Helper(format!("output reader panicked: {e}")))?;
        match result {
            Some(result) => {
                self.return_helper(HelperProc {
                    child,
                    stdin,
                    stdout,
                    diag,
                });
                Ok(result)
            }
            None => {
                drop(stdin);
                let status = child.wait().await;
                let diag = diag.await.unwrap_or_default();
                Err(SandboxError::Helper(format!(
                    "helper exited ({status:?}) without a result: {}",
                    diag.trim()
                )))
            }
        }
    }
}

/// The next chunk of interactive stdin (`None` = closed); pending forever when there is none.
async fn next_input(input: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads helper frames until the result; forwards output chunks. Gives the reader back for
/// the next run.
async fn read_frames(
    mut r: BufReader<tokio::process::ChildStdout>,
    output: mpsc::Sender<OutputChunk>,
) -> (BufReader<tokio::process::ChildStdout>, Option<RunResult>) {
    loop {
        let mut h = [0u8; HEADER_LEN];
        if r.read_exact(&mut h).await.is_err() {
            return (r, None);
        }
        let (tag, elapsed, len) = decode_header(&h);
        let mut data = vec![0u8; len];
        if r.read_exact(&mut data).await.is_err() {
            return (r, None);
        }
        let stream = match tag {
            TAG_STDOUT => Stream::Stdout,
            TAG_STDERR => Stream::Stderr,
            TAG_RESULT => {
                let result = serde_json::from_slice(&data).ok();
                return (r, result);
            }
            _ => return (r, None),
        };
        let _ = output
            .send(OutputChunk {
                stream,
                data,
                elapsed,
            })
            .await;
    }
}
