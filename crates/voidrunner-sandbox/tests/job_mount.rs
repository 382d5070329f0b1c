//! CI jobs mount their workspace at `/job` with `ci` read-only: steps write their source
//! tree and artifacts, never the trusted CI code; other mount points are refused.

mod common;

use common::*;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voidrunner_sandbox::RunSpec;

#[tokio::test]
async fn workspace_at_job_with_a_read_only_ci_directory() {
    let Some(t) = sandbox() else { return };
    let ws = Arc::new(t.sandbox.create_workspace(4 << 20).expect("workspace"));
    ws.write_file("ci/build.sh", b"echo trusted\n", 0o644)
        .expect("ci");
    ws.write_file("src/main.c", b"int main;\n", 0o644)
        .expect("src");
    let script = "set -u\n\
        cat /job/ci/build.sh\n\
        echo built > /job/src/out.txt && echo src-writable\n\
        if echo evil > /job/ci/build.sh 2>/dev/null; then echo ci-WRITABLE; else echo ci-read-only; fi\n\
        if rm /job/ci/build.sh 2>/dev/null; then echo ci-REMOVABLE; else echo ci-kept; fi\n\
        if mv /job/ci /job/ci2 2>/dev/null; then echo ci-MOVED; else echo ci-pinned; fi\n\
        pwd\n";
    let mut spec = RunSpec::new(["/bin/sh", "-c", script]);
    spec.workspace = Some(ws.clone());
    spec.workspace_target = Some("/job".into());
    spec.workspace_readonly = vec!["ci".into()];
    spec.cwd = "/job/src".into();
    let o = run_spec(&t.sandbox, spec, CancellationToken::new()).await;
    assert_eq!(
        o.out(),
        "echo trusted\nsrc-writable\nci-read-only\nci-kept\nci-pinned\n/job/src\n",
        "stderr: {} result: {:?}",
        o.err(),
        o.result
    );
    assert_eq!(
        ws.read_file("src/out.txt", 100).expect("written"),
        b"built\n"
    );
    assert_eq!(
        ws.read_file("ci/build.sh", 100).expect("intact"),
        b"echo trusted\n"
    );

    for (target, ro) in [("/etc", vec![]), ("/job", vec!["../etc".to_owned()])] {
        let mut spec = RunSpec::new(["/bin/true"]);
        spec.workspace = Some(ws.clone());
        spec.workspace_target = Some(target.into());
        spec.workspace_readonly = ro;
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let result = t.sandbox.run(spec, tx, CancellationToken::new()).await;
        let refused = match result {
            Err(_) => true,
            Ok(r) => matches!(
                r.verdict,
                voidrunner_sandbox::SandboxVerdict::SandboxError(_)
            ),
        };
        assert!(refused, "{target} must be refused");
    }
    drop(ws);
    t.assert_clean();
}
