//! Secret masking end to end: a real program prints the values of environment variables the
//! worker config marks secret (split across writes, overlapping, multi-line); the stored
//! result, the event log (status events included) and the raw rows hold `***`, never a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use voidrunner_domain::{ExecutionStatus, Verdict};
use voidrunner_mask::{SecretBox, SecretKey};
use voidrunner_store::conformance::{new_execution, new_task};
use voidrunner_store::{LogStream, Scope};
use voidrunner_worker::{PoolOptions, WorkerPool};

use crate::helpers::{Job, TestStore, both_backends, config, native};

both_backends!(
    secrets_never_reach_the_store,
    task_secrets_are_injected_and_masked
);

const SPLIT: &str = "s3cr3t-split-value";
const OVERLAP_A: &str = "abcd1234";
const OVERLAP_B: &str = "1234wxyz";
const MULTI_LINE: &str = "line-one\nline-two\nline-three";

/// Each `printf` is one write; the sleeps make the parts of a value separate output chunks
/// (part of the scenario, not a synchronisation).
const PROGRAM: &str = r#"
printf 'start %s' "${SPLIT_TOKEN:0:5}"
sleep 0.2
printf '%s end\n' "${SPLIT_TOKEN:5}"
printf 'xx %s%s yy\n' "$OVL_SECRET" "${OVL2_SECRET:4}"
printf 'half %s\n' "${OVL_SECRET:0:4}"
printf '%s' "${ML_PASSWORD:0:12}" >&2
sleep 0.2
printf '%s!\n' "${ML_PASSWORD:12}" >&2
printf 'plain %s\n' "$GREETING"
"#;

async fn secrets_never_reach_the_store(t: TestStore) {
    let owner = t.user().await;
    let pool = t.pool(native(), "mask", config(1));
    let env = [
        ("SPLIT_TOKEN", SPLIT),
        ("OVL_SECRET", OVERLAP_A),
        ("OVL2_SECRET", OVERLAP_B),
        ("ML_PASSWORD", MULTI_LINE),
        ("GREETING", "hello-world"),
    ];
    let e = t
        .enqueue(Job {
            env: &env,
            ..Job::bash(owner, PROGRAM)
        })
        .await;
    let e = t.wait_finished(e.id).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{}: {e:?}", t.backend);
    assert_eq!(e.verdict, Some(Verdict::Exited { code: 0 }));
    assert_eq!(
        e.stdout, "start *** end\nxx *** yy\nhalf abcd\nplain hello-world\n",
        "{}",
        t.backend
    );
    assert_eq!(e.stderr, "***!\n", "{}", t.backend);

    let events = t.store.read_logs(e.id, 0, 10_000).await.expect("read logs");
    let of = |stream: LogStream| -> Vec<u8> {
        events
            .iter()
            .filter(|ev| ev.stream == stream)
            .flat_map(|ev| ev.data.clone())
            .collect()
    };
    assert_eq!(of(LogStream::Stdout), e.stdout.as_bytes());
    assert_eq!(of(LogStream::Stderr), e.stderr.as_bytes());
    assert!(
        events
            .last()
            .is_some_and(|ev| ev.stream == LogStream::Status),
        "the final status event is last"
    );
    let secrets = [SPLIT, OVERLAP_A, OVERLAP_B, MULTI_LINE, "line-two"];
    for ev in &events {
        for s in secrets {
            assert!(
                !ev.data.windows(s.len()).any(|w| w == s.as_bytes()),
                "{}: event {} ({:?}) holds a secret",
                t.backend,
                ev.seq,
                ev.stream
            );
        }
    }
    for s in secrets {
        assert_eq!(
            t.raw_output_rows_containing(e.id, s).await,
            0,
            "{}: a stored row holds {s:?}",
            t.backend
        );
    }
    // The check can fail: unmasked output is found by the same query.
    assert_eq!(t.raw_output_rows_containing(e.id, "hello-world").await, 2);
    pool.shutdown().await;
}

/// A sealed task secret is opened by the worker, injected as an environment variable (its
/// name is not one the config marks secret) and masked; no table holds its plaintext.
async fn task_secrets_are_injected_and_masked(t: TestStore) {
    let owner = t.user().await;
    let task = t
        .store
        .create_task(new_task(owner, "with a secret", voidrunner_store::now()))
        .await
        .expect("create task");
    let secret_box = SecretBox::new(&SecretKey::generate());
    let value = "conn:pa55word-42\nsecond line";
    let sealed = secret_box
        .seal_with_context(value.as_bytes(), format!("{}/DB_CONN", task.id).as_bytes())
        .expect("seal");
    t.store
        .set_task_secrets(
            Scope::All,
            task.id,
            BTreeMap::from([("DB_CONN".to_owned(), sealed)]),
        )
        .await
        .expect("set secrets");
    let options = PoolOptions {
        secret_box: Some(Arc::new(secret_box)),
        ..PoolOptions::default()
    };
    let pool = WorkerPool::start_with(t.store.clone(), native(), "sec".into(), config(1), options);
    let mut new = new_execution(owner, Some(task.id), 5, voidrunner_store::now());
    new.code = "printf 'got %s.\\n' \"$DB_CONN\"\n\
                printf '%s' \"${DB_CONN:0:8}\" >&2\nsleep 0.2\n\
                printf '%s|\\n' \"${DB_CONN:8}\" >&2\n"
        .to_owned();
    let e = t.queue.enqueue_execution(new).await.expect("enqueue");
    let e = t.wait_finished(e.id).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{}: {e:?}", t.backend);
    assert_eq!(e.stdout, "got ***.\n", "{}", t.backend);
    assert_eq!(e.stderr, "***|\n", "{}", t.backend);
    for needle in [value, "pa55word-42"] {
        assert_eq!(
            t.raw_output_rows_containing(e.id, needle).await,
            0,
            "{}: a stored row holds the secret",
            t.backend
        );
    }
    pool.shutdown().await;
}
