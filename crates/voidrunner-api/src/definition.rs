//! Job and workflow definitions as the API receives them: a `definition` field that is YAML
//! or JSON text, or the document as a JSON object, and every problem of it in one `422` with
//! the `problems` list (paths under `definition`, the first one's path is the `field`).

use voidrunner_jobs::{Format, Problems};

use crate::error::{ApiError, ApiResult};

/// `definition.<path>` (or `definition` for the document itself), as the client spells it.
pub(crate) fn request_path(path: &str) -> String {
    if path.is_empty() {
        "definition".to_owned()
    } else {
        format!("definition.{path}")
    }
}

/// 422 listing every problem of a `kind` (`job`, `workflow`) definition.
pub(crate) fn problems_error(kind: &str, problems: Vec<(String, String)>) -> ApiError {
    let message = if problems.len() == 1 {
        format!("the {kind} definition has a problem")
    } else {
        format!("the {kind} definition has {} problems", problems.len())
    };
    ApiError::validation("definition", message).with_problems(problems)
}

/// [`Problems`] of a definition (paths relative to it) as a 422.
pub(crate) fn from_problems(kind: &str, p: Problems) -> ApiError {
    problems_error(
        kind,
        p.0.into_iter()
            .map(|p| (request_path(&p.path), p.message))
            .collect(),
    )
}

/// Parses and validates a definition with `parse`: a string is YAML or JSON text (JSON when
/// it starts with `{`), an object is the document itself; anything else is a 422.
pub(crate) fn parse_document<T>(
    kind: &str,
    value: &serde_json::Value,
    parse: impl Fn(&str, Format) -> Result<T, Problems>,
) -> ApiResult<T> {
    let parsed = match value {
        serde_json::Value::String(text) => {
            let format = if text.trim_start().starts_with('{') {
                Format::Json
            } else {
                Format::Yaml
            };
            parse(text, format)
        }
        serde_json::Value::Object(_) => parse(&value.to_string(), Format::Json),
        _ => {
            return Err(ApiError::validation(
                "definition",
                "must be YAML or JSON text (a string) or a JSON object",
            ));
        }
    };
    parsed.map_err(|p| from_problems(kind, p))
}
