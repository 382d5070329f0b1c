//! The container definition of one execution: every security setting lives here, in one pure
//! function, so a unit test and the `docker inspect` test can check them.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use voidrunner_sandbox::Limits;

use super::DockerConfig;
use crate::registry::WORK_DIR;

/// Label set on every container this service creates (`true`).
pub const LABEL_MANAGED: &str = "voidrunner.managed";
/// Label naming the node that created the container, so a restarted node reaps its own.
pub const LABEL_NODE: &str = "voidrunner.node";

/// The fixed launcher script: copies exactly `$2` bytes of stdin into the file `$1` (the code),
/// then `exec`s the program (`$3…`), which inherits the rest of stdin. The code is data on
/// stdin, never part of a shell string; the script itself never changes.
pub const LAUNCHER: &str = "dd of=\"$1\" bs=65536 count=\"$2\" iflag=fullblock,count_bytes 2>/dev/null \
|| { echo 'voidrunner: cannot write the source file' >&2; exit 125; }; shift 2; exec \"$@\"";

/// The compile launcher: writes the code like [`LAUNCHER`], runs the compiler (`$3…`) with its
/// stdout joined to stderr, and when it succeeds writes a tar archive of the work directory to
/// stdout: the run container unpacks it with [`UNPACK_LAUNCHER`]. The compiler's exit status
/// (128 + n for a signal) is the container's.
pub const COMPILE_LAUNCHER: &str = "dd of=\"$1\" bs=65536 count=\"$2\" iflag=fullblock,count_bytes 2>/dev/null \
|| { echo 'voidrunner: cannot write the source file' >&2; exit 125; }; shift 2; \"$@\" >&2 || exit $?; \
exec tar -c -C /work .";

/// The run launcher after a compile: unpacks exactly `$1` bytes of stdin (the compile phase's
/// tar archive) into the work directory, then `exec`s the program (`$2…`), which inherits the
/// rest of stdin.
pub const UNPACK_LAUNCHER: &str = "dd bs=65536 count=\"$1\" iflag=fullblock,count_bytes 2>/dev/null \
| tar -x -C /work || { echo 'voidrunner: cannot unpack the compiled program' >&2; exit 125; }; \
shift; exec \"$@\"";

/// How the container receives its files on stdin (see the launchers).
#[derive(Debug, Clone, Copy)]
pub(super) enum Delivery<'a> {
    /// The code (`len` bytes) is written to `path`, then the program runs.
    Source { path: &'a str, len: usize },
    /// The code is written to `path`, the compiler runs, the work directory comes back as tar.
    Compile { path: &'a str, len: usize },
    /// A tar archive of `len` bytes is unpacked into the work directory, then the program runs.
    Unpack { len: usize },
}

impl Delivery<'_> {
    fn launcher_and_args(self) -> (&'static str, Vec<String>) {
        match self {
            Self::Source { path, len } => (LAUNCHER, vec![path.to_owned(), len.to_string()]),
            Self::Compile { path, len } => {
                (COMPILE_LAUNCHER, vec![path.to_owned(), len.to_string()])
            }
            Self::Unpack { len } => (UNPACK_LAUNCHER, vec![len.to_string()]),
        }
    }
}

/// Everything that varies per execution.
#[derive(Debug)]
pub(super) struct ContainerSpec<'a> {
    pub image: &'a str,
    /// What the launcher reads from stdin before the program starts.
    pub delivery: Delivery<'a>,
    /// The program's argv.
    pub argv: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    pub limits: &'a Limits,
}

/// Builds the container: non-root, no network, read-only root, tmpfs `/tmp` and work dir
/// owned by the run user, no capabilities, no new privileges, the inline seccomp profile,
/// memory = memory+swap, CPU quota, pids limit, ulimits, no mounts from the host, no logs kept
/// by the engine (output goes through the attach stream only).
pub(super) fn container_body(
    cfg: &DockerConfig,
    seccomp: &str,
    s: &ContainerSpec<'_>,
) -> ContainerCreateBody {
    let l = s.limits;
    let (uid, gid) = cfg.uid_gid();
    let memory = saturating_i64(l.memory_bytes);
    // The engine mounts a tmpfs `noexec` unless told `exec`: the work directory must hold the
    // compiled program, `/tmp` stays `noexec`.
    let tmpfs_opts = |size: u64, mode: &str, exec: &str| {
        format!(
            "rw,{exec},nosuid,nodev,size={size},nr_inodes=16384,uid={uid},gid={gid},mode={mode}"
        )
    };
    let tmpfs = HashMap::from([
        (
            "/tmp".to_owned(),
            tmpfs_opts(l.tmpfs_bytes, "1777", "noexec"),
        ),
        (
            WORK_DIR.to_owned(),
            tmpfs_opts(cfg.limits.workspace_bytes, "0700", "exec"),
        ),
    ]);
    let cpu_secs = saturating_i64(l.cpu_time.as_secs().max(1));
    let ulimit = |name: &str, soft: i64, hard: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(soft),
        hard: Some(hard),
    };
    let fsize = saturating_i64(l.max_file_size_bytes);
    let nofile = saturating_i64(l.max_open_files);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "cores are at most 64, far below i64"
    )]
    let nano_cpus = (l.cpu_cores.clamp(0.01, 64.0) * 1e9) as i64;
    let host = HostConfig {
        network_mode: Some("none".to_owned()),
        readonly_rootfs: Some(true),
        tmpfs: Some(tmpfs),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec![
            "no-new-privileges:true".to_owned(),
            format!("seccomp={seccomp}"),
        ]),
        privileged: Some(false),
        memory: Some(memory),
        memory_swap: Some(memory),
        memory_swappiness: Some(0),
        nano_cpus: Some(nano_cpus),
        pids_limit: Some(i64::from(l.max_processes)),
        ulimits: Some(vec![
            ulimit("nofile", nofile, nofile),
            ulimit("fsize", fsize, fsize),
            // PID 1 ignores SIGXCPU: the hard limit's SIGKILL ends it one second later.
            ulimit("cpu", cpu_secs, cpu_secs + 1),
            ulimit("core", 0, 0),
        ]),
        ipc_mode: Some("private".to_owned()),
        binds: Some(Vec::new()),
        mounts: Some(Vec::new()),
        log_config: Some(bollard::models::HostConfigLogConfig {
            typ: Some("none".to_owned()),
            config: None,
        }),
        auto_remove: Some(false),
        init: Some(false),
        ..HostConfig::default()
    };
    let (launcher, mut cmd) = s.delivery.launcher_and_args();
    cmd.extend(s.argv.iter().cloned());
    ContainerCreateBody {
        image: Some(s.image.to_owned()),
        user: Some(format!("{uid}:{gid}")),
        entrypoint: Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            launcher.to_owned(),
            "voidrunner-launch".to_owned(),
        ]),
        cmd: Some(cmd),
        env: Some(s.env.clone()),
        working_dir: Some(WORK_DIR.to_owned()),
        hostname: Some("sandbox".to_owned()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_NODE.to_owned(), cfg.node_id.clone()),
        ])),
        host_config: Some(host),
        ..ContainerCreateBody::default()
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_container_carries_the_security_settings() {
        let cfg = DockerConfig::default();
        let limits = cfg.limits.run_limits(&voidrunner_domain::ResourceLimits {
            timeout_secs: 5,
            memory_mb: 64,
            cpu_cores: 0.5,
            max_processes: 16,
            max_output_bytes: 1024,
        });
        let spec = ContainerSpec {
            image: "img",
            delivery: Delivery::Source {
                path: "/work/main.py",
                len: 7,
            },
            argv: vec!["/usr/bin/python3".into(), "/work/main.py".into()],
            env: vec!["A=b".into()],
            limits: &limits,
        };
        let body = container_body(&cfg, "{}", &spec);
        let h = body.host_config.expect("host config");
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(h.memory, Some(64 << 20));
        assert_eq!(h.memory_swap, h.memory);
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.pids_limit, Some(16));
        assert_eq!(h.privileged, Some(false));
        assert!(
            h.security_opt
                .expect("opts")
                .contains(&"seccomp={}".to_owned())
        );
        assert!(h.tmpfs.expect("tmpfs")["/work"].contains("uid=1000"));
        assert_eq!(limits.wall_timeout, Duration::from_secs(5));
        // The code never appears in the command: only its length does.
        assert_eq!(
            body.cmd.expect("cmd")[..2],
            ["/work/main.py".to_owned(), "7".to_owned()]
        );
    }
}
