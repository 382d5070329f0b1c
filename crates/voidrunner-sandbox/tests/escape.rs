//! Escape and abuse suite: each test fails if containment fails.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::{RunSpec, SandboxVerdict};

#[tokio::test]
async fn network_is_unreachable_and_only_a_down_loopback_exists() {
    let Some(t) = sandbox() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = listener.local_addr().expect("addr").port();
    let code = format!(
        "import socket, fcntl, struct, os\n\
         for fam, typ in [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_NETLINK, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW)]:\n\
         \x20   try:\n\
         \x20       s = socket.socket(fam, typ)\n\
         \x20       s.connect(('127.0.0.1', {port}))\n\
         \x20       print('CONNECTED', fam)\n\
         \x20   except OSError as e:\n\
         \x20       print('denied', fam, e.errno)\n\
         u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         print('unix ok')\n\
         ifr = fcntl.ioctl(u, 0x8913, struct.pack('16sH', b'lo', 0) + b'\\0' * 22)\n\
         flags = struct.unpack('16sH', ifr[:18])[1]\n\
         print('lo up' if flags & 1 else 'lo down')\n\
         print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n"
    );
    let o = py(&t.sandbox, &code).await;
    let out = o.out();
    assert!(!out.contains("CONNECTED"), "{out}");
    assert_eq!(out.matches("denied").count(), 5, "{out}\n{}", o.err());
    assert!(out.contains("unix ok"), "{out}");
    assert!(out.contains("lo down"), "{out}\n{}", o.err());
    assert!(out.contains("['lo']"), "{out}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(listener.accept().is_err(), "a connection reached the host");
    t.assert_clean();
}

#[tokio::test]
async fn writes_to_usr_root_and_etc_fail_but_tmp_and_work_succeed() {
    let Some(t) = sandbox() else { return };
    let o = sh(
        &t.sandbox,
        "for p in /usr/evil /evil /etc/evil /bin/evil /dev/evil /proc/evil; do (echo x > $p) 2>/dev/null && echo WROTE $p || echo denied $p; done; \
         echo ok > /tmp/a && echo tmp ok; echo ok > /work/a && echo work ok; mkdir /usr/lib/evil 2>/dev/null && echo MKDIR || echo nomkdir",
    )
    .await;
    let out = o.out();
    assert!(!out.contains("WROTE") && !out.contains("MKDIR"), "{out}");
    assert_eq!(out.matches("denied").count(), 6, "{out}");
    assert!(out.contains("tmp ok") && out.contains("work ok"), "{out}");
    assert!(
        !std::path::Path::new("/usr/evil").exists()
            && !std::path::Path::new("/usr/lib/evil").exists()
    );
    t.assert_clean();
}

#[tokio::test]
async fn host_secrets_and_service_data_are_not_visible() {
    let data_dir = tempfile::Builder::new()
        .prefix("voidrunner-data-")
        .tempdir_in("/var/lib")
        .expect("fake data dir");
    std::fs::write(data_dir.path().join("voidrunner.db"), b"SECRET-DATA").expect("write secret");
    let data_path = data_dir.path().to_string_lossy().into_owned();
    let Some(t) = sandbox() else { return };
    let script = format!(
        "ls -a /; for p in /etc/shadow /etc/gshadow /root /home /var/lib {data_path} {data_path}/voidrunner.db /etc/ssl/private /sys /run /boot; do \
         if [ -e $p ]; then echo VISIBLE $p; else echo hidden $p; fi; done; \
         find / -path /proc -prune -o -path /usr -prune -o -name 'voidrunner*' -print 2>/dev/null; grep -rs -D skip SECRET-DATA /etc /tmp /work /dev; echo end"
    );
    let o = sh(&t.sandbox, &script).await;
    let out = o.out();
    assert!(!out.contains("VISIBLE"), "{out}");
    assert!(
        !out.contains("SECRET-DATA") && !out.lines().any(|l| l.starts_with('/')),
        "{out}"
    );
    assert!(out.ends_with("end\n"), "{out}");
    let mut root: Vec<&str> = out
        .lines()
        .take_while(|l| !l.starts_with("hidden") && !l.starts_with("VISIBLE"))
        .collect();
    root.sort_unstable();
    assert_eq!(
        root,
        [
            ".", "..", "bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr", "work"
        ],
        "{out}"
    );
    t.assert_clean();
}

#[tokio::test]
async fn proc_shows_only_the_sandbox_processes() {
    let Some(t) = sandbox() else { return };
    let o = sh(
        &t.sandbox,
        "sleep 5 & sleep 5 & cd /proc && echo [0-9]*; cat /proc/1/cmdline | tr '\\0' ' '",
    )
    .await;
    let out = o.out();
    let mut lines = out.lines();
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert!(pids.len() <= 4 && pids.iter().all(|&p| p <= 10), "{out}");
    assert!(
        lines.next().unwrap_or("").starts_with("/bin/sh -c"),
        "{out}"
    );
    t.assert_clean();
}

#[tokio::test]
async fn kill_all_inside_cannot_touch_host_processes() {
    let Some(t) = sandbox() else { return };
    // One host process as root and one as the very uid the sandbox uses.
    let mut as_root = std::process::Command::new("/bin/sleep")
        .arg("60")
        .spawn()
        .expect("spawn");
    let mut as_sandbox_uid = std::process::Command::new("/bin/sleep")
        .arg("60")
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("spawn");
    let o = sh(
        &t.sandbox,
        &format!(
            "kill -9 -1; kill -9 {} {} 2>&1; echo done",
            as_root.id(),
            as_sandbox_uid.id()
        ),
    )
    .await;
    assert!(o.out().contains("done"), "{o:?}");
    assert!(
        as_root.try_wait().expect("wait").is_none(),
        "host root process was killed"
    );
    assert!(
        as_sandbox_uid.try_wait().expect("wait").is_none(),
        "host process of the sandbox uid was killed"
    );
    let _ = as_root.kill();
    let _ = as_sandbox_uid.kill();
    let _ = as_root.wait();
    let _ = as_sandbox_uid.wait();
    t.assert_clean();
}

#[tokio::test]
async fn ptrace_is_denied() {
    let Some(t) = sandbox() else { return };
    let code = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                pid = os.fork()\nif pid == 0:\n    import time; time.sleep(5); os._exit(0)\n\
                r = libc.ptrace(16, pid, 0, 0)\nprint('attach', r, ctypes.get_errno())\n\
                r = libc.ptrace(0, 0, 0, 0)\nprint('traceme', r, ctypes.get_errno())\n";
    let o = py(&t.sandbox, code).await;
    let out = o.out();
    assert!(
        out.contains("attach -1 1\n") && out.contains("traceme -1 1\n"),
        "{out}\n{}",
        o.err()
    );
    let o = run(&t.sandbox, &["/usr/bin/strace", "-f", "/bin/true"]).await;
    assert_ne!(
        o.result.verdict,
        SandboxVerdict::Exited(0),
        "strace worked: {o:?}"
    );
    t.assert_clean();
}

#[tokio::test]
async fn setuid_binaries_gain_nothing() {
    // A setuid-root copy of `id`, made visible read-only inside the sandbox.
    let suid_dir = tempfile::Builder::new()
        .prefix("vr-suid-")
        .tempdir_in("/var/tmp")
        .expect("dir");
    let id_copy = suid_dir.path().join("id");
    std::fs::copy("/usr/bin/id", &id_copy).expect("copy id");
    std::fs::set_permissions(&id_copy, std::fs::Permissions::from_mode(0o4755)).expect("setuid");
    std::fs::set_permissions(suid_dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let dir = suid_dir.path().to_path_buf();
    let Some(t) = sandbox_with(|c| c.ro_binds.push(dir)) else {
        return;
    };
    let script = format!(
        "{} -u; {} -ru; /usr/bin/su -c id root </dev/null 2>&1; echo su=$?; /usr/bin/mount -t tmpfs x /tmp 2>&1; echo mount=$?; \
         grep -E '^(NoNewPrivs|CapEff)' /proc/self/status",
        id_copy.display(),
        id_copy.display()
    );
    let o = sh(&t.sandbox, &script).await;
    let out = o.out();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("65534"), "{out}");
    assert_eq!(lines.next(), Some("65534"), "{out}");
    assert!(!out.contains("uid=0"), "{out}");
    assert!(!out.contains("su=0") && !out.contains("mount=0"), "{out}");
    assert!(
        out.contains("NoNewPrivs:\t1") && out.contains("CapEff:\t0000000000000000"),
        "{out}"
    );
    t.assert_clean();
}

#[tokio::test]
async fn namespace_and_mount_syscalls_are_denied() {
    let Some(t) = sandbox() else { return };
    let code = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                for name, call in [('unshare', lambda: libc.unshare(0x10000000)), ('mount', lambda: libc.mount(b'x', b'/tmp', b'tmpfs', 0, None)),\n\
                ('setns', lambda: libc.setns(os.open('/proc/self/ns/net', 0), 0)), ('chroot', lambda: libc.chroot(b'/tmp')),\n\
                ('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0)), ('bpf', lambda: libc.syscall(321, 0, 0, 0)),\n\
                ('perf', lambda: libc.syscall(298, 0, 0, -1, -1, 0)), ('clone_newuser', lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)),\n\
                ('x32_getpid', lambda: libc.syscall(0x40000000 + 39))]:\n\
                \x20   r = call()\n    print(name, r, ctypes.get_errno())\n\
                print('threads', __import__('threading').Thread(target=lambda: None).start() is None)\n";
    let o = py(&t.sandbox, code).await;
    let out = o.out();
    for name in [
        "unshare",
        "mount",
        "setns",
        "chroot",
        "keyctl",
        "bpf",
        "perf",
        "clone_newuser",
        "x32_getpid",
    ] {
        assert!(
            out.contains(&format!("{name} -1 1\n")),
            "{name} not denied with EPERM: {out}\n{}",
            o.err()
        );
    }
    assert!(
        out.contains("threads True"),
        "threads must still work (clone3 falls back): {out}\n{}",
        o.err()
    );
    t.assert_clean();
}

#[tokio::test]
async fn landlock_limits_writes_even_where_permissions_would_allow() {
    let Some(t) = sandbox() else { return };
    // /proc/self/comm is writable by its owner and /proc is a rw mount: only Landlock
    // (writes allowed beneath /work, /tmp and the device nodes only) stops this write.
    let o = sh(&t.sandbox, "(echo evil > /proc/self/comm) 2>/dev/null && echo COMM-WRITTEN; echo x > /dev/null && echo devnull ok").await;
    assert!(o.out().contains("devnull ok"), "{o:?}");
    if voidrunner_sandbox::Sandbox::host_report()
        .landlock_abi
        .is_some()
    {
        assert!(
            !o.out().contains("COMM-WRITTEN"),
            "landlock did not stop the write: {o:?}"
        );
    } else {
        eprintln!("landlock unavailable on this kernel: write restriction not checked");
    }
    t.assert_clean();
}

#[tokio::test]
async fn twenty_concurrent_sandboxes_do_not_see_each_other() {
    let Some(t) = sandbox() else { return };
    let mut runs = Vec::new();
    for i in 0..20 {
        let sb = t.sandbox.clone();
        runs.push(tokio::spawn(async move {
            let script = format!(
                "echo {i} > /tmp/mine-{i}; echo {i} > /work/mine-{i}; sleep 1 & sleep 0.5; ls /tmp /work | grep mine | sort -u | tr '\\n' ' '; echo; cd /proc && echo [0-9]*"
            );
            let spec = RunSpec::new(["/bin/sh", "-c", script.as_str()]);
            (i, run_spec(&sb, spec, CancellationToken::new()).await)
        }));
    }
    for r in runs {
        let (i, o) = r.await.expect("join");
        assert_eq!(o.result.verdict, SandboxVerdict::Exited(0), "{o:?}");
        let out = o.out();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some(format!("mine-{i} ").as_str()),
            "run {i} saw others: {out}"
        );
        let pids = lines.next().unwrap_or("").split(' ').count();
        assert!(pids <= 5, "run {i} sees {pids} processes: {out}");
    }
    t.assert_clean();
}

#[tokio::test]
async fn program_stays_in_its_cgroup_and_cannot_write_cgroupfs() {
    let Some(t) = sandbox() else { return };
    let o = sh(&t.sandbox, "cat /proc/self/cgroup; ls /sys 2>&1 | head -1").await;
    let out = o.out();
    assert!(
        out.lines()
            .filter(|l| l.starts_with(char::is_numeric))
            .all(|l| l.ends_with(":/")),
        "cgroup namespace root expected: {out}"
    );
    t.assert_clean();
}
