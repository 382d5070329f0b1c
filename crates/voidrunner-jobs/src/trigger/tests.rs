use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::validate::{Format, parse};

fn parent() -> JobDefinition {
    parse(
        "name: parent\nenv: {A: parent, B: parent}\nsecrets: [TOKEN]\nsteps: [{name: s, command: 'true'}]\n",
        Format::Yaml,
    )
    .expect("valid parent")
}

fn files() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "jobs/deploy.yaml".to_owned(),
            "name: deploy\nenv: {B: job, C: job}\nsteps: [{name: s, command: 'echo deploy'}]\n"
                .to_owned(),
        ),
        (
            "ci/other.yml".to_owned(),
            "name: other\nsteps: [{name: s, command: 'echo other'}]\n".to_owned(),
        ),
        (
            "jobs/broken.yaml".to_owned(),
            "name: broken\nsteps: []\n".to_owned(),
        ),
    ])
}

fn payload(jobs: serde_json::Value) -> TriggerPayload {
    parse_trigger(&json!({"type": "trigger_job", "operation_id": "op-1", "jobs": jobs}))
        .expect("valid payload")
}

#[test]
fn parse_accepts_both_forms_and_counts_every_job() {
    let p = parse_trigger(&json!({
        "type": "trigger_job", "operation_id": "6f1c", "trigger_type": "runnerlib",
        "jobs": [{"job_name": "a"}],
        "workflow": {"name": "legacy", "vars": {"x": "1"}},
        "workflows": [{"name": "w", "id": "x", "jobs": [{"job_name": "b"}, {"job_name": "c"}]}],
    }))
    .expect("valid");
    let names: Vec<_> = entries(&p)
        .into_iter()
        .map(|(at, j)| format!("{at}={}", j.job_name))
        .collect();
    assert_eq!(
        names,
        [
            "jobs[0]=a",
            "workflows[0].jobs[0]=b",
            "workflows[0].jobs[1]=c"
        ]
    );
}

#[test]
fn parse_refuses_bad_payloads_naming_the_field() {
    let cases = [
        (json!([]), "JSON object"),
        (
            json!({"operation_id": "x", "jobs": [{"job_name": "a"}]}),
            "type: missing",
        ),
        (
            json!({"type": "run", "operation_id": "x", "jobs": [{"job_name": "a"}]}),
            "type: must be",
        ),
        (
            json!({"type": "trigger_job", "version": 2, "operation_id": "x", "jobs": [{"job_name": "a"}]}),
            "version",
        ),
        (
            json!({"type": "trigger_job", "operation_id": "", "jobs": [{"job_name": "a"}]}),
            "operation_id",
        ),
        (
            json!({"type": "trigger_job", "operation_id": "x".repeat(129), "jobs": [{"job_name": "a"}]}),
            "operation_id",
        ),
        (
            json!({"type": "trigger_job", "operation_id": "x"}),
            "at least one",
        ),
        (
            json!({"type": "trigger_job", "operation_id": "x", "jobs": [{"job_name": "a", "ci_origin": "head"}]}),
            "ci_origin",
        ),
    ];
    for (value, expected) in cases {
        let err = parse_trigger(&value).expect_err(&value.to_string());
        assert!(err.contains(expected), "{value}: {err}");
    }
    let many: Vec<_> = (0..65)
        .map(|i| json!({"job_name": format!("j{i}")}))
        .collect();
    let err = parse_trigger(&json!({"type": "trigger_job", "operation_id": "x", "jobs": many}))
        .expect_err("too many");
    assert!(err.contains("at most 64"), "{err}");
    assert!(parse_trigger(&json!({"type": "trigger_job", "operation_id": "x".repeat(128), "jobs": [{"job_name": "a"}]})).is_ok());
}

#[test]
fn resolves_inline_file_and_default_jobs_with_env_layers() {
    let p = payload(json!([
        {"job_name": "deploy", "env": {"C": "entry", "D": "entry"}, "depends_on": ["build[1]"],
         "condition": "any_failed(needs)"},
        {"job_name": "other", "job_file": "./ci/other.yml"},
        {"job_name": "inline", "job": {"name": "x", "env": {"A": "job"},
         "steps": [{"name": "s", "command": "true"}]}},
    ]));
    let specs = resolve_trigger(&p, &parent(), &files()).expect("resolves");
    assert_eq!(specs.len(), 3);
    let deploy = &specs[0];
    assert_eq!(
        (deploy.name.as_str(), deploy.group.as_str()),
        ("deploy", "deploy")
    );
    assert_eq!(deploy.depends_on, ["build[1]"]);
    assert_eq!(deploy.condition, NodeCondition::AnyFailed);
    let env = |s: &NodeSpec| {
        s.job
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(env(deploy), ["A=parent", "B=job", "C=entry", "D=entry"]);
    assert_eq!(specs[1].job.name, "other");
    assert_eq!(specs[1].condition, NodeCondition::AllSuccess);
    assert_eq!(env(&specs[2]), ["A=job", "B=parent"]);
}

#[test]
fn every_problem_names_its_entry() {
    let p = payload(json!([
        {"job_name": "ok", "job": {"name": "ok", "steps": [{"name": "s", "command": "true"}]}},
        {"job_name": "bad name!"},
        {"job_name": "ghost"},
        {"job_name": "cond", "job_file": "jobs/deploy.yaml", "condition": "sometimes"},
        {"job_name": "esc", "job_file": "../etc/passwd"},
        {"job_name": "broken"},
        {"job_name": "inl", "job": {"name": "x", "steps": [{"name": "s"}]}},
        {"job_name": "selfdep", "job_file": "jobs/deploy.yaml", "depends_on": ["selfdep", "a b"]},
        {"job_name": "ok"},
        {"job_name": "both", "job": {}, "job_file": "x.yaml"},
    ]));
    let err = resolve_trigger(&p, &parent(), &files()).expect_err("problems");
    for expected in [
        "jobs[1].job_name: node names",
        "jobs[2]: no job, no job_file, and no jobs/ghost.yaml",
        "jobs[3].condition: unsupported condition \"sometimes\"",
        "jobs[4].job_file: escapes the job root",
        "jobs[5]: jobs/broken.yaml: steps",
        "jobs[6].job.steps[0]",
        "jobs[7].depends_on[0]: a node cannot depend on itself",
        "jobs[7].depends_on[1]: \"a b\" is not a node name",
        "jobs[8].job_name: \"ok\" is triggered twice",
        "jobs[9]: give at most one of job and job_file",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("jobs[0]"), "{err}");
}

#[test]
fn children_never_get_more_than_the_parent() {
    let p = payload(json!([
        {"job_name": "net", "job": {"name": "n", "network": true, "steps": [{"name": "s", "command": "true"}]}},
        {"job_name": "sec", "job": {"name": "s", "secrets": ["TOKEN", "ADMIN"], "steps": [{"name": "s", "command": "true"}]}},
        {"job_name": "envsec", "env": {"TOKEN": "x"}, "job": {"name": "s", "secrets": ["TOKEN"], "steps": [{"name": "s", "command": "true"}]}},
    ]));
    let err = resolve_trigger(&p, &parent(), &files()).expect_err("refused");
    assert!(err.contains("jobs[0]: network: true is more than"), "{err}");
    assert!(
        err.contains("jobs[1]: secrets[1]: ADMIN is not a secret"),
        "{err}"
    );
    assert!(!err.contains("TOKEN is not"), "{err}");
    assert!(
        err.contains("jobs[2].secrets[0]: env also sets TOKEN"),
        "{err}"
    );
    // The parent's own secrets and network are inherited as allowed.
    let mut net_parent = parent();
    net_parent.network = true;
    let ok = payload(json!([
        {"job_name": "net", "job": {"name": "n", "network": true, "secrets": ["TOKEN"], "steps": [{"name": "s", "command": "true"}]}},
    ]));
    let specs = resolve_trigger(&ok, &net_parent, &files()).expect("allowed");
    assert!(specs[0].job.network);
    assert_eq!(specs[0].job.secrets, ["TOKEN"]);
}

#[test]
fn a_child_without_sources_works_on_the_parents() {
    let parent = parse(
        "name: parent\nsource: {type: git, url: 'file:///r.git', ref: abc}\n\
         ci_source: {type: git, url: 'file:///r.git', ref: base}\n\
         steps: [{name: s, command: 'true'}]\n",
        Format::Yaml,
    )
    .expect("valid parent");
    let nodes = resolve_trigger(
        &payload(json!([
            {"job_name": "plain", "job": {"name": "plain", "steps": [{"name": "s", "command": "true"}]}},
            {"job_name": "own", "job": {"name": "own", "source": {"type": "git", "url": "file:///o.git"},
             "steps": [{"name": "s", "command": "true"}]}},
        ])),
        &parent,
        &files(),
    )
    .expect("resolves");
    assert_eq!(nodes[0].job.source, parent.source);
    assert_eq!(nodes[0].job.ci_source, parent.ci_source);
    assert_ne!(nodes[1].job.source, parent.source, "its own source is kept");
    assert_eq!(nodes[1].job.ci_source, parent.ci_source);
}
