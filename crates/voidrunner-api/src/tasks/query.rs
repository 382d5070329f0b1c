//! Parses the `GET /api/v1/tasks` query by hand so every bad value is a 400 naming its
//! parameter (a generic deserializer would only say "invalid query").

use serde::Deserialize;
use voidrunner_domain::ExecutionStatus;
use voidrunner_store::{PageRequest, TaskFilter};

use crate::cursor;
use crate::error::{ApiError, ApiResult};

/// Default page size.
pub(crate) const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub(crate) const MAX_LIMIT: u32 = 100;
/// Longest accepted search string / filter value, in characters.
const MAX_FILTER_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    language: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    created_before: Option<String>,
    created_after: Option<String>,
    all: Option<String>,
}

/// The parsed listing request.
#[derive(Debug)]
pub(crate) struct ListQuery {
    pub(crate) filter: TaskFilter,
    pub(crate) page: PageRequest,
    pub(crate) all: bool,
}

fn text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.chars().count() > MAX_FILTER_CHARS => Err(ApiError::invalid_query(
            field,
            format!("must be at most {MAX_FILTER_CHARS} characters"),
        )),
        Some(s) if s.contains('\0') => Err(ApiError::invalid_query(
            field,
            "must not contain NUL (U+0000)",
        )),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn time(field: &str, v: Option<String>) -> ApiResult<Option<voidrunner_domain::Timestamp>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| ApiError::invalid_query(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

/// Parses the raw query string (`None` when there is none).
pub(crate) fn parse(raw: Option<&str>) -> ApiResult<ListQuery> {
    let q: RawQuery = serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .unwrap_or("query")
            .to_owned();
        ApiError::invalid_query(&field, "unknown or duplicated query parameter")
    })?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_query("limit", format!("must be an integer 1–{MAX_LIMIT}"))
            })?,
    };
    let after = q
        .cursor
        .filter(|s| !s.is_empty())
        .map(|s| {
            cursor::decode_task(&s)
                .ok_or_else(|| ApiError::invalid_query("cursor", "invalid cursor"))
        })
        .transpose()?;
    let status = q
        .status
        .map(|s| {
            ExecutionStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid_query("status", "unknown execution status"))
        })
        .transpose()?;
    let all = match q.all.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_query("all", "must be true or false")),
    };
    Ok(ListQuery {
        filter: TaskFilter {
            language: text("language", q.language)?,
            status,
            tag: text("tag", q.tag)?,
            search: text("q", q.q)?,
            created_before: time("created_before", q.created_before)?,
            created_after: time("created_after", q.created_after)?,
        },
        page: PageRequest { after, limit },
        all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(raw: &str) -> String {
        let e = parse(Some(raw)).expect_err("must fail");
        format!("{e:?}")
    }

    #[test]
    fn defaults_and_errors() {
        let q = parse(None).expect("empty query");
        assert_eq!(q.page.limit, DEFAULT_LIMIT);
        assert!(!q.all);
        for (raw, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("cursor=zzz", "cursor"),
            ("status=done", "status"),
            ("created_before=yesterday", "created_before"),
            ("all=yes", "all"),
            ("q=a%00b", "q"),
            ("tag=%00", "tag"),
            ("bogus=1", "bogus"),
        ] {
            assert!(field_of(raw).contains(&format!("\"{field}\"")), "{raw}");
        }
    }
}
