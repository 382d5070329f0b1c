//! Parsing and validation. Every problem is reported at once, each with its path in the
//! document (`steps[2].depends_on[0]`): first the shape, checked against the published JSON
//! Schema (unknown fields, types, ranges, patterns), then the rules a schema cannot express
//! (duplicate step names, unknown dependencies, cycles, paths escaping the workspace, env
//! and secret names).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::definition::{Condition, Executor, JobDefinition};
use crate::path::workspace_relative;

/// The document's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (JSON is valid YAML too).
    Yaml,
    /// JSON.
    Json,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Path in the document, e.g. `steps[1].depends_on[0]`; empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem of a document, in document order where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.path.is_empty() {
                write!(f, "{}", p.message)?;
            } else {
                write!(f, "{}: {}", p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// The JSON Schema of a job definition (draft 2020-12), as published.
pub fn json_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = schemars::schema_for!(JobDefinition).to_value();
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "$id".into(),
                Value::String("https://voidrunner.dev/schemas/job.json".into()),
            );
        }
        schema
    })
}

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| jsonschema::validator_for(json_schema()).ok())
        .as_ref()
}

/// Parses and validates a job definition.
pub fn parse(text: &str, format: Format) -> Result<JobDefinition, Problems> {
    from_value(&parse_value(text, format)?)
}

/// Parses a document into a JSON value; a syntax error is one problem saying where.
pub(crate) fn parse_value(text: &str, format: Format) -> Result<Value, Problems> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            Problems(vec![Problem::new(
                "",
                format!(
                    "not valid JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )])
        }),
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" at line {} column {}", l.line(), l.column()))
                .unwrap_or_default();
            Problems(vec![Problem::new("", format!("not valid YAML{at}: {e}"))])
        }),
    }
}

/// Adds every schema problem of `value` (`None`: the schema did not compile, a bug) to
/// `problems`, sorted by path and without repeats.
pub(crate) fn schema_problems(
    validator: Option<&jsonschema::Validator>,
    value: &Value,
    problems: &mut Vec<Problem>,
) {
    let Some(validator) = validator else {
        problems.push(Problem::new("", "the schema does not compile (a bug)"));
        return;
    };
    for error in validator.iter_errors(value) {
        collect(&error, problems);
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    problems.dedup();
}

/// Validates an already parsed document.
pub fn from_value(value: &Value) -> Result<JobDefinition, Problems> {
    let mut problems: Vec<Problem> = Vec::new();
    let value = normalize_aliases(value, &mut problems);
    schema_problems(validator(), &value, &mut problems);
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let def: JobDefinition = serde_json::from_value(value)
        .map_err(|e| Problems(vec![Problem::new("", e.to_string())]))?;
    check_rules(&def, &mut problems);
    if problems.is_empty() {
        Ok(def)
    } else {
        Err(Problems(problems))
    }
}

/// Rewrites accepted aliases to their canonical names before the schema (which knows only
/// the canonical ones) sees the document: a step's `needs` is `depends_on`.
fn normalize_aliases(value: &Value, problems: &mut Vec<Problem>) -> Value {
    let mut value = value.clone();
    if let Some(steps) = value.get_mut("steps").and_then(Value::as_array_mut) {
        for (i, step) in steps.iter_mut().enumerate() {
            let Some(obj) = step.as_object_mut() else {
                continue;
            };
            if let Some(needs) = obj.remove("needs") {
                if obj.contains_key("depends_on") {
                    problems.push(Problem::new(
                        format!("steps[{i}].needs"),
                        "give either needs or depends_on, not both",
                    ));
                } else {
                    obj.insert("depends_on".into(), needs);
                }
            }
        }
    }
    value
}

/// Turns a schema error into problems. For `anyOf`/`oneOf` (optional values, tagged
/// variants) the branch the document evidently meant is reported — the one whose type and
/// tag matched, with the fewest errors — rather than "matches none of the schemas".
fn collect(error: &jsonschema::ValidationError<'_>, out: &mut Vec<Problem>) {
    use jsonschema::error::ValidationErrorKind as K;
    let path = display_path(&error.instance_path().to_string());
    match error.kind() {
        K::AdditionalProperties { unexpected } => {
            for field in unexpected {
                out.push(Problem::new(join(&path, field), "unknown field"));
            }
        }
        K::AnyOf { context } | K::OneOfNotValid { context } => {
            let here = error.instance_path().to_string();
            let meant = context
                .iter()
                .filter(|branch| !branch.iter().any(|e| misses_branch(e, &here)))
                .min_by_key(|branch| branch.len());
            match meant {
                Some(branch) if !branch.is_empty() => {
                    for e in branch {
                        collect(e, out);
                    }
                }
                _ => out.push(Problem::new(path, "does not match any allowed form")),
            }
        }
        _ => out.push(Problem::new(
            path,
            schema_message(&error.masked().to_string()),
        )),
    }
}

/// An error showing that a branch is not the one the document meant: the value's type is
/// wrong for it, or its `type`/`kind` tag names another variant.
fn misses_branch(e: &jsonschema::ValidationError<'_>, parent: &str) -> bool {
    use jsonschema::error::ValidationErrorKind as K;
    let at = e.instance_path().to_string();
    match e.kind() {
        K::Type { .. } => at == parent,
        K::Constant { .. } | K::Enum { .. } => {
            at == format!("{parent}/type") || at == format!("{parent}/kind")
        }
        _ => false,
    }
}

/// `/steps/1/depends_on/0` → `steps[1].depends_on[0]`.
fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for raw in pointer.split('/').skip(1) {
        let part = raw.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&part);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The validator's message without the echo of a long instance.
fn schema_message(message: &str) -> String {
    const MAX: usize = 200;
    if message.len() <= MAX {
        return message.to_owned();
    }
    let mut cut = MAX;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &message[..cut])
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

fn check_env(path: &str, env: &BTreeMap<String, String>, problems: &mut Vec<Problem>) {
    for (name, value) in env {
        if !is_env_name(name) {
            problems.push(Problem::new(
                format!("{path}.{name}"),
                "name must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)",
            ));
        }
        if value.contains('\0') {
            problems.push(Problem::new(format!("{path}.{name}"), "value contains NUL"));
        }
    }
}

pub(crate) fn check_rules(def: &JobDefinition, problems: &mut Vec<Problem>) {
    check_env("env", &def.env, problems);
    let mut seen_secrets = HashSet::new();
    for (i, name) in def.secrets.iter().enumerate() {
        let path = format!("secrets[{i}]");
        if !is_env_name(name) {
            problems.push(Problem::new(&path, "must be an env variable name"));
        } else if !seen_secrets.insert(name.as_str()) {
            problems.push(Problem::new(&path, format!("duplicate secret {name}")));
        } else if def.env.contains_key(name) {
            problems.push(Problem::new(&path, format!("env also sets {name}")));
        }
    }
    if let Executor::Docker { image } = &def.executor
        && image.trim().is_empty()
    {
        problems.push(Problem::new("executor.image", "must not be blank"));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, step) in def.steps.iter().enumerate() {
        if let Some(first) = index.insert(step.name.as_str(), i) {
            index.insert(step.name.as_str(), first);
            problems.push(Problem::new(
                format!("steps[{i}].name"),
                format!("duplicate step name {:?} (also steps[{first}])", step.name),
            ));
        }
    }
    for (i, step) in def.steps.iter().enumerate() {
        let at = format!("steps[{i}]");
        let mut deps = HashSet::new();
        for (j, dep) in step.depends_on.iter().enumerate() {
            let path = format!("{at}.depends_on[{j}]");
            if dep == &step.name {
                problems.push(Problem::new(path, "a step cannot depend on itself"));
            } else if !index.contains_key(dep.as_str()) {
                problems.push(Problem::new(path, format!("unknown step {dep:?}")));
            } else if !deps.insert(dep.as_str()) {
                problems.push(Problem::new(path, format!("{dep:?} is listed twice")));
            }
        }
        if step.condition == Condition::OnFailure && step.depends_on.is_empty() {
            problems.push(Problem::new(
                format!("{at}.condition"),
                "on_failure needs depends_on: it runs when something it depends on failed",
            ));
        }
        if let Some(dir) = &step.working_dir
            && let Err(e) = workspace_relative(dir)
        {
            problems.push(Problem::new(format!("{at}.working_dir"), e.to_string()));
        }
        check_env(&format!("{at}.env"), &step.env, problems);
        if step.command.contains('\0') {
            problems.push(Problem::new(format!("{at}.command"), "contains NUL"));
        }
    }
    for cycle in cycles(&step_edges(def, &index)) {
        let names: Vec<&str> = cycle.iter().map(|&i| def.steps[i].name.as_str()).collect();
        problems.push(Problem::new(
            format!("steps[{}].depends_on", cycle[0]),
            format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
        ));
    }
    for (i, artifact) in def.artifacts.iter().enumerate() {
        if let Err(e) = workspace_relative(&artifact.0) {
            problems.push(Problem::new(format!("artifacts[{i}]"), e.to_string()));
        }
    }
    for (i, hook) in def.hooks.iter().enumerate() {
        if !hook.phase.allows_user_hooks() {
            problems.push(Problem::new(
                format!("hooks[{i}].phase"),
                format!(
                    "{} is for built-in hooks only: no command runs before the definition is valid",
                    hook.phase.as_str()
                ),
            ));
        }
    }
    if let Some(source) = Some(&def.source).into_iter().chain(def.ci_source.as_ref()).find(
        |s| matches!(s, crate::definition::Source::Git { git_ref: Some(r), .. } if r.starts_with('-')),
    ) {
        let field = if std::ptr::eq(source, &def.source) {
            "source.ref"
        } else {
            "ci_source.ref"
        };
        problems.push(Problem::new(field, "must not start with '-'"));
    }
}

/// Every dependency cycle of a graph given as each node's dependencies (indices), each
/// reported once, from the first of its nodes the search reaches (in index order).
pub(crate) fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        found: &mut Vec<Vec<usize>>,
    ) {
        marks[i] = Mark::Active;
        stack.push(i);
        for &d in &edges[i] {
            match marks[d] {
                Mark::New => visit(d, edges, marks, stack, found),
                Mark::Active => {
                    if let Some(pos) = stack.iter().position(|&s| s == d) {
                        found.push(stack[pos..].to_vec());
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    for i in 0..edges.len() {
        if marks[i] == Mark::New {
            visit(i, edges, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// The steps' dependency edges (self-dependencies and unknown names left out: reported
/// on their own).
fn step_edges(def: &JobDefinition, index: &HashMap<&str, usize>) -> Vec<Vec<usize>> {
    def.steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter(|d| *d != &s.name)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect()
}
