//! Submodules, when a job asks for them. Their URLs come from `.gitmodules`, which the
//! repository's author writes, so each one passes the same rules as the job's own URL
//! before anything is fetched: the protocol allow-list, no local paths, the host check
//! against non-public addresses, and the pin to the checked address. Nesting is walked level
//! by level (never git's blind `--recursive`): each submodule's own `.gitmodules` is checked
//! after it is checked out and before its submodules are fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::git::{Git, check_git_url, redact};
use super::host::check_and_pin;
use super::{SourceError, SourcePolicy};

/// Deepest nesting of submodules followed (the top repository's are level 1).
pub(super) const MAX_LEVELS: usize = 8;

/// Most submodules of one source, all levels together: each is a clone, and the size cap is
/// only measured once they are all fetched.
pub(super) const MAX_SUBMODULES: usize = 256;

/// A repository whose submodules are to be updated: its worktree, where it sits under the
/// top one (for messages) and its URL (redacted from git's messages).
struct Level {
    dir: PathBuf,
    prefix: String,
    url: String,
    depth: usize,
}

/// A submodule of one level, as git will fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Submodule {
    name: String,
    path: String,
    /// The URL git resolved (relative URLs against the superproject's) into the local config.
    url: String,
}

/// Updates the submodules of the repository `top` has checked out, level by level, each URL
/// checked before any submodule of its level is fetched. `depth` is `--depth=N` or `None`.
pub(super) fn update(top: &Git<'_>, depth: Option<&str>) -> Result<(), SourceError> {
    let root = top
        .dir
        .canonicalize()
        .map_err(|e| SourceError::Failed(format!("repository {}: {e}", top.dir.display())))?;
    let mut total = 0usize;
    let mut todo = vec![Level {
        dir: root.clone(),
        prefix: String::new(),
        url: top.url.to_owned(),
        depth: 0,
    }];
    while let Some(level) = todo.pop() {
        let git = Git {
            policy: top.policy,
            dir: &level.dir,
            deadline: top.deadline,
            url: &level.url,
            pin: None,
        };
        let found = list(&git)?;
        if found.is_empty() {
            continue;
        }
        total += found.len();
        if total > MAX_SUBMODULES {
            return Err(SourceError::TooLarge(format!(
                "more than {MAX_SUBMODULES} submodules"
            )));
        }
        if level.depth >= MAX_LEVELS {
            return Err(SourceError::Refused(format!(
                "submodules nested deeper than {MAX_LEVELS} levels (at {})",
                level.prefix.trim_end_matches('/')
            )));
        }
        // Every URL of the level is checked before any of them is fetched.
        let mut checked = Vec::with_capacity(found.len());
        for sub in found {
            let shown = format!("{}{}", level.prefix, sub.path);
            let pin = check(&sub, top.policy).map_err(|e| named(e, &shown, &sub.url))?;
            checked.push((sub, shown, pin));
        }
        for (sub, shown, pin) in checked {
            let fetch = Git {
                pin: pin.as_ref(),
                url: &sub.url,
                ..git
            };
            // Literal: a path like `:(glob)*` would otherwise update every submodule of the
            // level under this one's pin.
            let spec = format!(":(literal){}", sub.path);
            let mut args = vec!["submodule", "update", "-q", "--init"];
            args.extend(depth);
            args.extend(["--", spec.as_str()]);
            // Checked before the fetch writes there (the checkout made the directory).
            let dir = inside(&root, &level.dir.join(&sub.path))?;
            fetch.run(&args).map_err(|e| named(e, &shown, &sub.url))?;
            // `update = none` (or an unpopulated path) leaves no checkout to descend into.
            if dir.join(".git").exists() {
                todo.push(Level {
                    dir,
                    prefix: format!("{shown}/"),
                    url: sub.url,
                    depth: level.depth + 1,
                });
            }
        }
    }
    Ok(())
}

/// The job's rules for a submodule URL: an allowed protocol (local paths never), a public
/// host unless the operator allows private ones; answers the pin of the host.
fn check(sub: &Submodule, policy: &SourcePolicy) -> Result<Option<super::host::Pin>, SourceError> {
    let protocol = check_git_url(&sub.url, &policy.git_protocols)?;
    check_and_pin(&sub.url, &protocol, policy.allow_private_hosts)
}

/// `e` with the submodule named (its path from the top repository and its URL, redacted).
fn named(e: SourceError, shown: &str, url: &str) -> SourceError {
    let say = |m: String| format!("submodule {shown} ({}): {m}", redact(url));
    match e {
        SourceError::Refused(m) => SourceError::Refused(say(m)),
        SourceError::Failed(m) => SourceError::Failed(say(m)),
        other => other,
    }
}

/// `path` canonicalized, refused unless it is inside `root` (a submodule path that leads out
/// through a link is never used as a working directory).
fn inside(root: &Path, path: &Path) -> Result<PathBuf, SourceError> {
    let canonical = path
        .canonicalize()
        .map_err(|e| SourceError::Failed(format!("submodule {}: {e}", path.display())))?;
    if canonical.starts_with(root) {
        Ok(canonical)
    } else {
        Err(SourceError::Refused(format!(
            "submodule path {} leads outside the checkout",
            path.display()
        )))
    }
}

/// The submodules git would update in `git.dir`: their URLs are written into the local
/// config by `git submodule init` (which resolves relative URLs the way the update will), and
/// only paths that are submodules (gitlinks) in the index count.
fn list(git: &Git<'_>) -> Result<Vec<Submodule>, SourceError> {
    let gitmodules = git.dir.join(".gitmodules");
    match std::fs::symlink_metadata(&gitmodules) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SourceError::Failed(format!(".gitmodules: {e}"))),
        Ok(m) if !m.is_file() => {
            return Err(SourceError::Refused(
                ".gitmodules is not a regular file".into(),
            ));
        }
        Ok(_) => {}
    }
    let paths = entries(
        &git.run_raw(&["config", "-z", "-f", ".gitmodules", "--list"])?,
        "path",
    );
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = BTreeSet::new();
    for path in paths.values() {
        check_path(path)?;
        // Two names for one path: which URL git takes is not for us to guess.
        if !seen.insert(path) {
            return Err(SourceError::Refused(format!(
                "submodule path {path:?} is given twice in .gitmodules"
            )));
        }
    }
    git.run(&["submodule", "--quiet", "init"])?;
    let urls = entries(&git.run_raw(&["config", "-z", "--local", "--list"])?, "url");
    let mut ls = vec!["ls-files", "-z", "--stage", "--"];
    let specs: Vec<String> = paths.values().map(|p| format!(":(literal){p}")).collect();
    ls.extend(specs.iter().map(String::as_str));
    let gitlinks: BTreeSet<String> = git
        .run_raw(&ls)?
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, path) = entry.split_once('\t')?;
            meta.starts_with("160000 ").then(|| path.to_owned())
        })
        .collect();
    Ok(paths
        .into_iter()
        .filter(|(_, path)| gitlinks.contains(path))
        .filter_map(|(name, path)| {
            let url = urls.get(&name)?.clone();
            Some(Submodule { name, path, url })
        })
        .collect())
}

/// A submodule path must stay inside its repository: relative, no `..`, not an option.
fn check_path(path: &str) -> Result<(), SourceError> {
    let p = Path::new(path);
    if path.is_empty()
        || path.starts_with('-')
        || !p.components().all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(SourceError::Refused(format!(
            "submodule path {path:?} must be relative, without '..', not starting with '-'"
        )));
    }
    Ok(())
}

/// `submodule.<name>.<key>` values of `git config -z --list` output, by name.
fn entries(out: &[u8], key: &str) -> BTreeMap<String, String> {
    let suffix = format!(".{key}");
    out.split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('\n')?;
            let name = k
                .strip_prefix("submodule.")?
                .strip_suffix(suffix.as_str())?;
            Some((name.to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_entries_are_read_by_submodule_name() {
        let out = b"core.bare\nfalse\0submodule.a.b.url\nhttps://h/x\0submodule.a.b.path\nlib/x\0\
                    submodule.c.url\n../c\0submodule.flag\0";
        let urls = entries(out, "url");
        assert_eq!(urls.len(), 2);
        assert_eq!(urls["a.b"], "https://h/x");
        assert_eq!(urls["c"], "../c");
        assert_eq!(entries(out, "path")["a.b"], "lib/x");
    }

    #[test]
    fn submodule_paths_stay_inside() {
        for ok in ["lib", "vendor/x", "a.b"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/etc", "../x", "a/../../b", "-x", "./a"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
