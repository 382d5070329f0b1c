use super::*;
use crate::{Format, parse};

fn plan(yaml: &str) -> Plan {
    Plan::new(&parse(yaml, Format::Yaml).expect("valid job"))
}

/// Runs `next(width)` and answers the names of the started steps.
fn start(p: &mut Plan, width: usize) -> Vec<String> {
    let idx = p.next(width);
    idx.iter().map(|&i| p.name(i).to_owned()).collect()
}

const BUILD_TEST_PACKAGE: &str = "
name: ci
steps:
  - {name: build, command: make}
  - {name: test, command: make test, depends_on: [build]}
  - {name: package, command: tar, depends_on: [test]}
  - {name: report, command: echo, depends_on: [test], condition: always}
  - {name: notify, command: echo, depends_on: [package], condition: on_failure}
";

#[test]
fn happy_path_runs_in_dependency_order() {
    let mut p = plan(BUILD_TEST_PACKAGE);
    assert_eq!(start(&mut p, 4), ["build"]);
    assert!(p.next(4).is_empty(), "nothing else is ready");
    p.finish(0, StepState::Succeeded);
    assert_eq!(start(&mut p, 4), ["test"]);
    p.finish(1, StepState::Succeeded);
    assert_eq!(start(&mut p, 4), ["package", "report"]);
    p.finish(2, StepState::Succeeded);
    p.finish(3, StepState::Succeeded);
    assert!(p.next(4).is_empty());
    assert_eq!(p.state(4), StepState::Skipped);
    assert_eq!(p.skip_reason(4), Some("nothing upstream failed"));
    assert!(p.is_finished());
    assert_eq!(p.outcome(), JobOutcome::Succeeded);
}

#[test]
fn a_failure_skips_dependants_in_cascade_but_runs_always_and_on_failure() {
    let mut p = plan(BUILD_TEST_PACKAGE);
    p.next(4);
    p.finish(0, StepState::Succeeded);
    p.next(4);
    p.finish(1, StepState::Failed);
    // package is skipped, which makes notify (on_failure downstream of it) run; report always runs.
    assert_eq!(start(&mut p, 4), ["report", "notify"]);
    assert_eq!(p.state(2), StepState::Skipped);
    assert_eq!(p.skip_reason(2), Some("dependency test failed"));
    p.finish(3, StepState::Succeeded);
    p.finish(4, StepState::Succeeded);
    assert!(p.is_finished());
    assert_eq!(p.outcome(), JobOutcome::Failed);
}

#[test]
fn continue_on_error_counts_as_success() {
    let mut p = plan(
        "
name: j
steps:
  - {name: lint, command: x, continue_on_error: true}
  - {name: build, command: y, depends_on: [lint]}
  - {name: alarm, command: z, depends_on: [lint], condition: on_failure}
",
    );
    p.next(2);
    p.finish(0, StepState::Failed);
    assert_eq!(start(&mut p, 2), ["build"]);
    assert_eq!(p.state(2), StepState::Skipped);
    p.finish(1, StepState::Succeeded);
    assert_eq!(p.outcome(), JobOutcome::Succeeded);
}

#[test]
fn width_bounds_parallel_steps_and_order_is_the_definition_order() {
    let mut p = plan(
        "
name: j
steps:
  - {name: a, command: x}
  - {name: b, command: x}
  - {name: c, command: x}
  - {name: d, command: x, depends_on: [a, b, c]}
",
    );
    assert_eq!(start(&mut p, 2), ["a", "b"]);
    assert!(p.next(2).is_empty(), "width 2 is full");
    p.finish(1, StepState::Succeeded);
    assert_eq!(start(&mut p, 2), ["c"]);
    p.finish(0, StepState::Succeeded);
    assert!(p.next(2).is_empty(), "d waits for c");
    p.finish(2, StepState::Succeeded);
    assert_eq!(start(&mut p, 2), ["d"]);
}

#[test]
fn cancel_skips_what_did_not_start_and_the_job_is_cancelled() {
    let mut p = plan(BUILD_TEST_PACKAGE);
    p.next(4);
    p.abandon("job cancelled");
    p.finish(0, StepState::Cancelled);
    assert!(p.next(4).is_empty());
    assert!(p.is_finished());
    assert_eq!(p.skip_reason(3), Some("job cancelled"));
    assert_eq!(p.outcome(), JobOutcome::Cancelled);
}

#[test]
fn a_timeout_fails_the_job() {
    let mut p = plan("name: j\nsteps:\n  - {name: a, command: sleep 9}\n");
    p.next(1);
    p.finish(0, StepState::TimedOut);
    assert_eq!(p.outcome(), JobOutcome::Failed);
}
