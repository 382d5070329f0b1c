//! Landlock (best effort): writes only beneath /work, /tmp and to the device nodes; no TCP
//! bind/connect (ABI ≥ 4); no signals or abstract sockets outside the sandbox (ABI ≥ 6).
//!
//! Raw syscalls rather than the `landlock` crate: the rules are applied in the clone child,
//! which must not allocate, so the plan is prepared here and applied with plain syscalls.

use crate::error::SandboxError;
use std::ffi::CString;

const ACCESS_FS_WRITE_FILE: u64 = 1 << 1;
const ACCESS_FS_REMOVE_DIR: u64 = 1 << 4;
const ACCESS_FS_REMOVE_FILE: u64 = 1 << 5;
const ACCESS_FS_MAKE_CHAR: u64 = 1 << 6;
const ACCESS_FS_MAKE_DIR: u64 = 1 << 7;
const ACCESS_FS_MAKE_REG: u64 = 1 << 8;
const ACCESS_FS_MAKE_SOCK: u64 = 1 << 9;
const ACCESS_FS_MAKE_FIFO: u64 = 1 << 10;
const ACCESS_FS_MAKE_BLOCK: u64 = 1 << 11;
const ACCESS_FS_MAKE_SYM: u64 = 1 << 12;
const ACCESS_FS_REFER: u64 = 1 << 13;
const ACCESS_FS_TRUNCATE: u64 = 1 << 14;
const ACCESS_NET_BIND_TCP: u64 = 1 << 0;
const ACCESS_NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;
const CREATE_RULESET_VERSION: u32 = 1 << 0;
/// `LANDLOCK_RULE_PATH_BENEATH`.
pub(super) const RULE_PATH_BENEATH: i32 = 1;

/// `struct landlock_ruleset_attr` (ABI 6 layout; older kernels accept the zero tail).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct RulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel UAPI).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub(super) struct PathBeneathAttr {
    pub allowed_access: u64,
    pub parent_fd: i32,
}

/// A prepared ruleset: attributes plus (path, allowed access) rules.
#[derive(Debug)]
pub(super) struct LandlockPlan {
    pub attr: RulesetAttr,
    pub rules: Vec<(CString, u64)>,
}

/// The Landlock ABI version of the running kernel, `None` when unsupported or disabled.
pub(crate) fn abi_version() -> Option<u32> {
    // SAFETY: with a NULL attr and size 0, the VERSION flag only queries the ABI.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).ok().filter(|&v| v > 0)
}

/// The plan for `abi`: handled = every write-type right the ABI knows.
pub(super) fn plan(abi: u32, workspace: &str) -> Result<LandlockPlan, SandboxError> {
    let mut fs = ACCESS_FS_WRITE_FILE
        | ACCESS_FS_REMOVE_DIR
        | ACCESS_FS_REMOVE_FILE
        | ACCESS_FS_MAKE_CHAR
        | ACCESS_FS_MAKE_DIR
        | ACCESS_FS_MAKE_REG
        | ACCESS_FS_MAKE_SOCK
        | ACCESS_FS_MAKE_FIFO
        | ACCESS_FS_MAKE_BLOCK
        | ACCESS_FS_MAKE_SYM;
    if abi >= 2 {
        fs |= ACCESS_FS_REFER;
    }
    let mut file_rights = ACCESS_FS_WRITE_FILE;
    if abi >= 3 {
        fs |= ACCESS_FS_TRUNCATE;
        file_rights |= ACCESS_FS_TRUNCATE;
    }
    let net = if abi >= 4 {
        ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP
    } else {
        0
    };
    let scoped = if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    let c = |s: &str| CString::new(s).map_err(|_| SandboxError::Invalid("NUL in path".into()));
    let mut rules = vec![(c(workspace)?, fs), (c("/tmp")?, fs)];
    for dev in super::plan::DEVICES {
        rules.push((c(&format!("/dev/{dev}"))?, file_rights));
    }
    Ok(LandlockPlan {
        attr: RulesetAttr {
            handled_access_fs: fs,
            handled_access_net: net,
            scoped,
        },
        rules,
    })
}
