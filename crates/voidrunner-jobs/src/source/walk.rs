//! Caps shared by every source kind, and lexical link checks.

use std::path::{Component, Path};

use super::{SourceError, SourcePolicy};

/// Counts what is written and refuses to go past the policy's caps.
#[derive(Debug)]
pub(crate) struct Budget<'a> {
    policy: &'a SourcePolicy,
    pub bytes: u64,
    pub entries: u64,
}

impl<'a> Budget<'a> {
    pub fn new(policy: &'a SourcePolicy) -> Self {
        Budget {
            policy,
            bytes: 0,
            entries: 0,
        }
    }

    /// Accounts one entry of `size` bytes.
    pub fn take(&mut self, size: u64) -> Result<(), SourceError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > self.policy.max_entries {
            return Err(SourceError::TooLarge(format!(
                "more than {} entries",
                self.policy.max_entries
            )));
        }
        if self.bytes > self.policy.max_bytes {
            return Err(SourceError::TooLarge(format!(
                "more than {} bytes",
                self.policy.max_bytes
            )));
        }
        Ok(())
    }
}

/// True when a relative path stays inside its root, judged lexically: no root or prefix
/// component and no `..` that climbs above the start.
pub(crate) fn stays_inside(rel: &Path) -> bool {
    let mut depth: usize = 0;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// True when a symlink at `link_rel` (relative to the root) with `target` points inside the
/// root: a relative target resolved from the link's directory stays inside, and it has no
/// `..` at all after a component that could itself be a link (only leading `..` are allowed),
/// so a chain of links cannot climb out either.
pub(crate) fn link_stays_inside(link_rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut seen_normal = false;
    for c in target.components() {
        match c {
            Component::Normal(_) => seen_normal = true,
            Component::ParentDir if seen_normal => return false,
            _ => {}
        }
    }
    let parent = link_rel.parent().unwrap_or(Path::new(""));
    stays_inside(&parent.join(target))
}

/// Total size and entries of a tree, not following links; stops at the caps.
pub(crate) fn measure(root: &Path, budget: &mut Budget<'_>) -> Result<(), SourceError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| SourceError::Failed(format!("reading {}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| SourceError::Failed(e.to_string()))?;
            let meta = entry
                .path()
                .symlink_metadata()
                .map_err(|e| SourceError::Failed(e.to_string()))?;
            budget.take(if meta.is_file() { meta.len() } else { 0 })?;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_containment() {
        assert!(stays_inside(Path::new("a/b/../c")));
        assert!(!stays_inside(Path::new("a/../../c")));
        assert!(!stays_inside(Path::new("/etc")));
        assert!(link_stays_inside(
            Path::new("a/link"),
            Path::new("../b/file")
        ));
        assert!(link_stays_inside(Path::new("link"), Path::new("sub/file")));
        assert!(!link_stays_inside(
            Path::new("link"),
            Path::new("../outside")
        ));
        assert!(!link_stays_inside(
            Path::new("a/link"),
            Path::new("/etc/passwd")
        ));
        // `y/..` could climb out if `y` is itself a link to `.`.
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("y/..")));
    }
}
