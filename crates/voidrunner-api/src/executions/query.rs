//! Query strings of the execution endpoints, parsed by hand so every bad value is a 400
//! naming its parameter.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use voidrunner_store::ExecutionCursor;

use crate::cursor;
use crate::error::{ApiError, ApiResult};
use crate::tasks::query::{DEFAULT_LIMIT, MAX_LIMIT};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    wait: Option<String>,
    timeout_secs: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page request of an execution listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageQuery {
    pub(crate) after: Option<ExecutionCursor>,
    pub(crate) limit: u32,
}

fn from_query<T: DeserializeOwned + Default>(raw: Option<&str>) -> ApiResult<T> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .unwrap_or("query")
            .to_owned();
        ApiError::invalid_query(&field, "unknown or duplicated query parameter")
    })
}

/// `?wait=true&timeout_secs=N` → how long to wait (`None`: answer at once). `timeout_secs`
/// defaults to, and is lowered to, `max_wait_secs`.
pub(crate) fn parse_wait(raw: Option<&str>, max_wait_secs: u32) -> ApiResult<Option<Duration>> {
    let q: RawWait = from_query(raw)?;
    let wait = match q.wait.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid_query("wait", "must be true or false")),
    };
    let secs = match q.timeout_secs {
        None => max_wait_secs,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::invalid_query("timeout_secs", "must be a positive integer"))?
            .min(max_wait_secs),
    };
    Ok(wait.then(|| Duration::from_secs(secs.into())))
}

/// `?limit=&cursor=` of execution listings.
pub(crate) fn parse_page(raw: Option<&str>) -> ApiResult<PageQuery> {
    let q: RawPage = from_query(raw)?;
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
            cursor::decode_execution(&s)
                .ok_or_else(|| ApiError::invalid_query("cursor", "invalid cursor"))
        })
        .transpose()?;
    Ok(PageQuery { after, limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_defaults_caps_and_errors() {
        assert_eq!(parse_wait(None, 60).expect("none"), None);
        assert_eq!(parse_wait(Some("wait=false"), 60).expect("false"), None);
        assert_eq!(
            parse_wait(Some("wait=true"), 60).expect("default"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_wait(Some("wait=true&timeout_secs=5"), 60).expect("5"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_wait(Some("wait=true&timeout_secs=500"), 60).expect("capped"),
            Some(Duration::from_secs(60))
        );
        for (raw, field) in [
            ("wait=yes", "wait"),
            ("wait=true&timeout_secs=0", "timeout_secs"),
            ("wait=true&timeout_secs=x", "timeout_secs"),
            ("timeout=3", "timeout"),
        ] {
            let e = parse_wait(Some(raw), 60).expect_err(raw);
            assert_eq!(e.field(), Some(field), "{raw}");
        }
    }

    #[test]
    fn page_errors_name_the_parameter() {
        let p = parse_page(None).expect("empty");
        assert_eq!(p.limit, DEFAULT_LIMIT);
        for (raw, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("cursor=zzz", "cursor"),
            ("status=queued", "status"),
        ] {
            let e = parse_page(Some(raw)).expect_err(raw);
            assert_eq!(e.field(), Some(field), "{raw}");
        }
    }
}
