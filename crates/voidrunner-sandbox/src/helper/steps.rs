//! The numbered setup steps of the clone child (wire values of its error reports).

/// The numbered, linear setup sequence of the child. `index` in an error refers to the
/// operation list (fs ops, rlimits, landlock rules, seccomp filters) of the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Step {
    /// 1. dup2 the program's pipes onto 0, 1, 2.
    Stdio = 1,
    /// 2. filesystem operations (mount, mkdir, pivot_root …), see `ChildPlan::ops`.
    Fs,
    /// 3. sethostname("sandbox").
    Hostname,
    /// 4. unshare(CLONE_NEWUSER).
    Unshare,
    /// 5. wait for the helper to write uid_map/gid_map (it joined us to the cgroup before).
    WaitMaps,
    /// 6. unshare(CLONE_NEWCGROUP).
    CgroupNs,
    /// 7. setrlimit (index into `ChildPlan::rlimits`).
    Rlimit,
    /// 8. landlock_create_ruleset.
    LandlockCreate,
    /// 9. landlock_add_rule (index into the rules).
    LandlockRule,
    /// 10. prctl(PR_CAPBSET_DROP) for every capability.
    BoundingSet,
    /// 11. setgroups(0, NULL).
    Setgroups,
    /// 12. setresgid(gid, gid, gid).
    Setresgid,
    /// 13. setresuid(uid, uid, uid).
    Setresuid,
    /// 14. prctl(PR_SET_PDEATHSIG, SIGKILL) and check the helper is still alive.
    Pdeathsig,
    /// 15. capset to empty sets; clear ambient capabilities.
    Capabilities,
    /// 16. chdir(cwd).
    Chdir,
    /// 17. prctl(PR_SET_NO_NEW_PRIVS, 1).
    NoNewPrivs,
    /// 18. landlock_restrict_self.
    LandlockRestrict,
    /// 19. mark every fd above 2 close-on-exec; reset signal dispositions and mask (SIGPIPE
    ///     is ignored in the helper).
    Signals,
    /// 20. seccomp(SECCOMP_SET_MODE_FILTER) (index into the filters).
    Seccomp,
    /// 21. execve(argv[0], argv, env).
    Exec,
}

impl Step {
    /// Decodes the wire value.
    pub(super) fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        [
            Stdio,
            Fs,
            Hostname,
            Unshare,
            WaitMaps,
            CgroupNs,
            Rlimit,
            LandlockCreate,
            LandlockRule,
            BoundingSet,
            Setgroups,
            Setresgid,
            Setresuid,
            Pdeathsig,
            Capabilities,
            Chdir,
            NoNewPrivs,
            LandlockRestrict,
            Signals,
            Seccomp,
            Exec,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}
