//! Job definition validation: every problem at once, each with its path in the document.

use voidrunner_jobs::{Condition, Executor, Format, Source, json_schema, parse};

const FULL: &str = r#"
name: build-and-test
description: Build a C program, test it, package it.
executor: {kind: docker, image: "voidrunner/gcc:12"}
source: {type: git, url: "https://example.com/repo.git", ref: main, depth: 1}
ci_source: {type: tarball}
env: {CC: gcc}
secrets: [DEPLOY_TOKEN]
timeout_secs: 600
parallelism: 2
limits: {memory_mb: 512, cpu_cores: 1.5, workspace_mb: 256, max_files: 10000}
steps:
  - name: build
    command: gcc -O2 -o app main.c
  - name: test
    command: ./app --self-test
    needs: [build]
    timeout_secs: 30
  - name: package
    command: tar czf /job/artifacts/app.tgz app
    depends_on: [test]
    working_dir: /job/src
  - name: always-report
    command: echo done
    depends_on: [test]
    condition: always
    continue_on_error: true
    env: {REPORT: "1"}
artifacts: ["artifacts/app.tgz", "src/**/*.log"]
hooks:
  - {phase: cleanup, command: "echo bye"}
"#;

#[test]
fn a_full_definition_parses_with_every_field() {
    let def = parse(FULL, Format::Yaml).expect("valid");
    assert_eq!(def.name, "build-and-test");
    assert_eq!(
        def.executor,
        Executor::Docker {
            image: "voidrunner/gcc:12".into()
        }
    );
    assert!(
        matches!(&def.source, Source::Git { git_ref: Some(r), depth: Some(1), submodules: false, .. } if r == "main")
    );
    assert_eq!(def.ci_source, Some(Source::Tarball));
    assert_eq!(def.steps[1].depends_on, ["build"], "`needs` is an alias");
    assert_eq!(def.steps[3].condition, Condition::Always);
    assert_eq!(def.steps[0].condition, Condition::OnSuccess, "the default");
    // The same document as JSON gives the same definition.
    let json = serde_json::to_string(&def).expect("json");
    assert_eq!(parse(&json, Format::Json).expect("json valid"), def);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let doc = r#"
name: "bad name!"
colour: blue
source: {type: git, url: "https://x/r.git", ref: "--upload-pack=evil"}
secrets: [TOKEN, TOKEN]
steps:
  - {name: build, command: make, depends_on: [test]}
  - {name: test, command: make test, depends_on: [build, ghost]}
  - {name: build, command: again}
  - {name: out, command: x, working_dir: "../../etc"}
  - {name: notify, command: x, condition: on_failure}
  - {name: self, command: x, depends_on: [self]}
artifacts: ["/etc/passwd", "src/../../x"]
hooks:
  - {phase: pre_validation, command: "curl evil"}
"#;
    // Shape problems come first (a schema error stops before the rules are checked).
    let shape = parse(doc, Format::Yaml).expect_err("invalid").0;
    let paths: Vec<&str> = shape.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"colour"), "{shape:?}");
    assert!(paths.contains(&"name"), "{shape:?}");
    assert!(
        shape
            .iter()
            .any(|p| p.path == "colour" && p.message == "unknown field"),
        "{shape:?}"
    );

    // Without the shape problems, every rule problem is listed.
    let doc = doc.replace("name: \"bad name!\"\ncolour: blue\n", "name: ok\n");
    let problems = parse(&doc, Format::Yaml).expect_err("invalid").0;
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    let expect = [
        "source.ref: must not start with '-'",
        "secrets[1]: duplicate secret TOKEN",
        "steps[2].name: duplicate step name \"build\" (also steps[0])",
        "steps[1].depends_on[1]: unknown step \"ghost\"",
        "steps[3].working_dir: escapes the job root with '..'",
        "steps[4].condition: on_failure needs depends_on",
        "steps[5].depends_on[0]: a step cannot depend on itself",
        "steps[0].depends_on: dependency cycle: build → test → build",
        "artifacts[0]: must be relative to /job",
        "artifacts[1]: escapes the job root",
        "hooks[0].phase: pre_validation is for built-in hooks only",
    ];
    for e in expect {
        assert!(
            text.iter().any(|t| t.starts_with(e)),
            "missing {e:?} in {text:#?}"
        );
    }
    assert_eq!(text.len(), expect.len(), "{text:#?}");
}

#[test]
fn unknown_fields_are_found_at_any_depth() {
    let doc = r#"{"name": "j", "steps": [{"name": "a", "command": "x", "retries": 3}],
                  "source": {"type": "copy", "path": ".", "follow": true},
                  "limits": {"memory": 5}}"#;
    let problems = parse(doc, Format::Json).expect_err("invalid").0;
    let unknown: Vec<&str> = problems
        .iter()
        .filter(|p| p.message == "unknown field")
        .map(|p| p.path.as_str())
        .collect();
    // Inside optional values and tagged variants too, not "matches none of the schemas".
    assert_eq!(
        unknown,
        ["limits.memory", "source.follow", "steps[0].retries"],
        "{problems:?}"
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn wrong_types_and_ranges_name_the_field() {
    let doc = "name: j\nparallelism: 0\nsteps:\n  - {name: a, command: x, timeout_secs: -1, condition: sometimes}\n";
    let problems = parse(doc, Format::Yaml).expect_err("invalid").0;
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for p in ["parallelism", "steps[0].timeout_secs", "steps[0].condition"] {
        assert!(paths.contains(&p), "{p} in {problems:?}");
    }
}

#[test]
fn syntax_errors_say_where() {
    let problems = parse("name: [unclosed\nsteps: x", Format::Yaml)
        .expect_err("invalid")
        .0;
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("line"), "{problems:?}");
    let problems = parse("{\"name\": ", Format::Json).expect_err("invalid").0;
    assert!(problems[0].message.contains("line 1"), "{problems:?}");
    let problems = parse("name: j\n", Format::Yaml).expect_err("no steps").0;
    assert!(
        problems.iter().any(|p| p.message.contains("steps")),
        "{problems:?}"
    );
}

#[test]
fn the_published_schema_is_closed_and_identified() {
    let schema = json_schema();
    assert_eq!(schema["$id"], "https://voidrunner.dev/schemas/job.json");
    assert_eq!(schema["additionalProperties"], false);
    assert!(
        schema["required"]
            .as_array()
            .expect("required")
            .contains(&"steps".into())
    );
}
