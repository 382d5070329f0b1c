//! The human views of `repo` answers: a repository's settings, the repository table and the
//! delivery table. Secrets appear only as "set" (the server never answers their values).

use std::fmt::Write as _;

use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A repository's settings, one `label: value` line each.
pub(super) fn repository(r: &Value) -> String {
    let names: Vec<&str> = r["secret_names"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let job_secrets = if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("{n} (set)"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let status = match r["status_api_url"].as_str() {
        Some(url) => format!("{url} (token set)"),
        None => "off".to_owned(),
    };
    let rows = [
        ("id", s(&r["id"]).to_owned()),
        ("provider", s(&r["provider"]).to_owned()),
        ("full name", s(&r["full_name"]).to_owned()),
        ("clone url", s(&r["clone_url"]).to_owned()),
        ("ci dir", s(&r["ci_dir"]).to_owned()),
        (
            "fork secrets",
            if r["fork_secrets"] == true {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
        ),
        ("webhook secret", "set".to_owned()),
        ("job secrets", job_secrets),
        ("status reporting", status),
        ("hook path", s(&r["hook_path"]).to_owned()),
        ("created", s(&r["created_at"]).to_owned()),
    ];
    let mut out = String::new();
    for (label, value) in rows {
        let _ = writeln!(out, "{:<17} {value}", format!("{label}:"));
    }
    out
}

/// Rows under a header, columns padded to their widest cell (the last one is not padded).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `repo list`: one line per repository.
pub(super) fn repository_table(page: &Value) -> String {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no repositories\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|r| {
            let secrets = r["secret_names"].as_array().map_or(0, Vec::len);
            vec![
                s(&r["id"]).to_owned(),
                s(&r["provider"]).to_owned(),
                s(&r["full_name"]).to_owned(),
                secrets.to_string(),
                if r["status_api_url"].is_string() {
                    "on"
                } else {
                    "off"
                }
                .to_owned(),
                s(&r["clone_url"]).to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "PROVIDER",
            "FULL NAME",
            "SECRETS",
            "STATUS",
            "CLONE URL",
        ],
        &rows,
    )
}

/// What a delivery came to, from its summary: `started`, `duplicate`, `ignored`, `invalid`
/// (a workflow file could not be used and nothing started) or `no match`.
pub(super) fn outcome(d: &Value) -> &'static str {
    let summary = &d["summary"];
    let started = d["workflow_ids"].as_array().is_some_and(|a| !a.is_empty());
    if summary.get("duplicate_of").is_some() {
        "duplicate"
    } else if started {
        "started"
    } else if summary.get("ignored").is_some() {
        "ignored"
    } else if summary["invalid"].as_array().is_some_and(|a| !a.is_empty()) {
        "invalid"
    } else {
        "no match"
    }
}

/// The workflows a delivery started, `name (id)` when the summary names them.
fn workflows(d: &Value) -> String {
    let matched = d["summary"]["matched"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids = d["workflow_ids"].as_array().cloned().unwrap_or_default();
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter()
        .map(|id| {
            let name = matched
                .iter()
                .find(|m| m["workflow_id"] == *id)
                .and_then(|m| m["name"].as_str());
            match name {
                Some(n) => format!("{n} ({})", s(id)),
                None => s(id).to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `repo deliveries`: one line per delivery, newest first.
pub(super) fn delivery_table(page: &Value) -> String {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no deliveries\n".to_owned();
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|d| {
            let git_ref = d["summary"]["ref"].as_str().unwrap_or("-");
            vec![
                s(&d["received_at"]).to_owned(),
                s(&d["event"]).to_owned(),
                git_ref.to_owned(),
                outcome(d).to_owned(),
                s(&d["delivery_id"]).to_owned(),
                workflows(d),
            ]
        })
        .collect();
    table(
        &[
            "RECEIVED",
            "EVENT",
            "REF",
            "OUTCOME",
            "DELIVERY",
            "WORKFLOWS",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn outcome_reads_the_summary() {
        let d = |summary: Value, ids: Value| json!({"summary": summary, "workflow_ids": ids});
        let id = json!(["0b7e0f3a-2c1e-4a4e-9a57-3c9f3c1f0a11"]);
        assert_eq!(outcome(&d(json!({"matched": []}), id.clone())), "started");
        assert_eq!(
            outcome(&d(json!({"duplicate_of": "x"}), id.clone())),
            "duplicate"
        );
        assert_eq!(outcome(&d(json!({"ignored": "why"}), json!([]))), "ignored");
        assert_eq!(
            outcome(&d(json!({"invalid": [{"file": "a"}]}), json!([]))),
            "invalid"
        );
        assert_eq!(outcome(&d(json!({"invalid": []}), json!([]))), "no match");
    }

    #[test]
    fn tables_pad_columns_and_name_started_workflows() {
        let page = json!({"items": [
            {"received_at": "2026-11-26T10:00:00Z", "event": "push", "delivery_id": "d-1",
             "summary": {"ref": "refs/heads/main", "matched": [{"name": "ci", "workflow_id": "w1"}]},
             "workflow_ids": ["w1"]},
            {"received_at": "2026-11-26T09:00:00Z", "event": "tag_created", "delivery_id": "d-22",
             "summary": {"ref": "refs/tags/v1"}, "workflow_ids": []},
        ]});
        let text = delivery_table(&page);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].ends_with("d-1       ci (w1)"), "{text}");
        assert!(lines[2].contains("tag_created  refs/tags/v1"), "{text}");
        assert!(lines[2].ends_with("no match  d-22      -"), "{text}");
        assert_eq!(delivery_table(&json!({"items": []})), "no deliveries\n");
    }

    #[test]
    fn a_repository_shows_secrets_only_as_set() {
        let r = json!({"id": "i", "provider": "github", "full_name": "a/b", "clone_url": "u",
            "ci_dir": ".voidrunner", "fork_secrets": false, "secret_names": ["TOKEN"],
            "status_api_url": null, "hook_path": "/api/v1/hooks/github", "created_at": "t"});
        let text = repository(&r);
        assert!(text.contains("webhook secret:   set\n"), "{text}");
        assert!(text.contains("job secrets:      TOKEN (set)\n"), "{text}");
        assert!(text.contains("status reporting: off\n"), "{text}");
    }
}
