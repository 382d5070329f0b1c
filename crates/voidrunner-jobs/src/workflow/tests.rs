use std::collections::BTreeMap;

use super::*;

fn wf(yaml: &str) -> WorkflowDefinition {
    parse_workflow(yaml, Format::Yaml).unwrap_or_else(|p| panic!("{p}"))
}

const JOB: &str = "{name: j, steps: [{name: s, command: \"true\"}]}";

fn names(p: &WorkflowPlan, idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| p.name(i).to_owned()).collect()
}

#[test]
fn a_failed_build_skips_deploy_and_runs_the_any_failed_handler() {
    // Reference scenario 1.
    let def = wf(&format!(
        "name: w\njobs:\n  build: {{job: {JOB}}}\n  deploy: {{job: {JOB}, depends_on: [build]}}\n  notify: {{job: {JOB}, needs: [build], condition: any_failed}}\n"
    ));
    let mut p = WorkflowPlan::new(&def);
    let started = p.next(10);
    assert_eq!(names(&p, &started), ["build"]);
    p.finish(started[0], NodeState::Failed);
    let started = p.next(10);
    assert_eq!(names(&p, &started), ["notify"]);
    let deploy = (0..p.len())
        .find(|&i| p.name(i) == "deploy")
        .expect("deploy");
    assert_eq!(p.state(deploy), NodeState::Skipped);
    assert_eq!(
        p.skip_reason(deploy),
        Some("dependency build did not succeed")
    );
    p.finish(started[0], NodeState::Succeeded);
    assert_eq!(
        p.status(),
        WorkflowStatus::Failed,
        "a handler does not make it a success"
    );
}

#[test]
fn fan_out_instances_and_group_dependencies() {
    // Reference scenario 2 and the expansion naming.
    let def = wf(&format!(
        "name: w\njobs:\n  build: {{job: {JOB}, for_each: [linux, windows]}}\n  deploy: {{job: {JOB}, depends_on: [build]}}\n  notify: {{job: {JOB}, depends_on: [build], condition: any_failed}}\n"
    ));
    for cap in [1, usize::MAX] {
        let mut p = WorkflowPlan::new(&def);
        assert_eq!(p.len(), 4);
        let mut started = Vec::new();
        while started.len() < 2 {
            started.extend(p.next(cap.min(2 - started.len())));
        }
        assert_eq!(names(&p, &started), ["build[0]", "build[1]"]);
        assert_eq!(p.item(started[1]), Some(("ITEM", "windows")));
        assert_eq!(p.group(started[1]), "build");
        assert!(p.next(cap).is_empty(), "deploy waits for the whole group");
        p.finish(started[0], NodeState::Succeeded);
        assert!(p.next(cap).is_empty(), "still waiting for build[1]");
        p.finish(started[1], NodeState::Failed);
        let next = p.next(cap);
        assert_eq!(names(&p, &next), ["notify"], "cap {cap}");
    }
}

#[test]
fn skips_cascade_and_statuses() {
    let def = wf(&format!(
        "name: w\njobs:\n  a: {{job: {JOB}}}\n  b: {{job: {JOB}, depends_on: [a]}}\n  c: {{job: {JOB}, depends_on: [b]}}\n  d: {{job: {JOB}, depends_on: [c], condition: always}}\n"
    ));
    let mut p = WorkflowPlan::new(&def);
    let s = p.next(10);
    p.finish(s[0], NodeState::Cancelled);
    let s = p.next(10);
    assert_eq!(
        names(&p, &s),
        ["d"],
        "b and c skipped in one pass, d always runs"
    );
    assert_eq!(p.status(), WorkflowStatus::Running);
    p.finish(s[0], NodeState::Succeeded);
    assert_eq!(p.status(), WorkflowStatus::Cancelled);

    let def = wf(&format!(
        "name: w\njobs:\n  a: {{job: {JOB}}}\n  h: {{job: {JOB}, depends_on: [a], condition: any_failed}}\n"
    ));
    let mut p = WorkflowPlan::new(&def);
    let s = p.next(10);
    p.finish(s[0], NodeState::Succeeded);
    assert!(p.next(10).is_empty());
    assert_eq!(
        p.status(),
        WorkflowStatus::Succeeded,
        "a skipped handler is fine"
    );
    let mut p = WorkflowPlan::new(&def);
    p.abandon("cancelled");
    assert_eq!(p.status(), WorkflowStatus::Skipped);
}

#[test]
fn outputs_merge_by_node_and_conflicts_fail() {
    let mut all = BTreeMap::new();
    let one = BTreeMap::from([("version".to_owned(), "1".to_owned())]);
    merge_outputs(&mut all, "build", &one).expect("first");
    merge_outputs(&mut all, "build", &one).expect("same value from another instance");
    assert_eq!(all["build.version"], "1");
    let two = BTreeMap::from([("version".to_owned(), "2".to_owned())]);
    assert_eq!(
        merge_outputs(&mut all, "build", &two),
        Err(MergeConflict {
            key: "build.version".into()
        })
    );
    merge_outputs(&mut all, "test", &two).expect("another node's namespace");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let yaml = format!(
        "name: w\njobs:\n  a: {{job: {JOB}, depends_on: [ghost, c]}}\n  b: {{job_file: ../../etc/passwd}}\n  c: {{job: {JOB}, depends_on: [a], condition: sometimes}}\n  d: {{}}\n"
    );
    // Shape first: the unsupported condition is a schema error.
    let shape = parse_workflow(&yaml, Format::Yaml).expect_err("invalid").0;
    assert!(
        shape.iter().any(|p| p.path == "jobs.c.condition"),
        "{shape:?}"
    );
    let yaml = yaml.replace(", condition: sometimes", "");
    let problems = parse_workflow(&yaml, Format::Yaml).expect_err("invalid").0;
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    for want in [
        "jobs.a.depends_on[0]: unknown node \"ghost\"",
        "jobs.b.job_file: escapes the job root",
        "jobs.d: give exactly one of job and job_file",
        "jobs.a.depends_on: dependency cycle: a → c → a",
    ] {
        assert!(
            text.iter().any(|t| t.starts_with(want)),
            "missing {want:?} in {text:#?}"
        );
    }
    // Problems inside an inline job carry the node's path.
    let yaml = "name: w\njobs:\n  a: {job: {name: j, steps: [{name: s, command: x}, {name: s, command: y}]}}\n";
    let problems = parse_workflow(yaml, Format::Yaml).expect_err("invalid").0;
    assert_eq!(problems[0].path, "jobs.a.job.steps[1].name", "{problems:?}");
    assert_eq!(
        workflow_schema()["$id"],
        "https://voidrunner.dev/schemas/workflow.json"
    );
}
