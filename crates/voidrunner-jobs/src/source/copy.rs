//! `copy` sources (the local runner only): the directory is copied file by file, never
//! following a symlink. A link whose target stays inside the copied tree is recreated as a
//! link; one pointing outside refuses the copy (following it would copy host files into the
//! job, recreating it would hand the job a path out). Special files are refused.

use std::path::Path;

use super::walk::{Budget, link_stays_inside};
use super::{Prepared, SourceError, SourcePolicy};

pub(crate) fn copy_tree(
    from: &Path,
    dest: &Path,
    policy: &SourcePolicy,
) -> Result<Prepared, SourceError> {
    let root = from
        .canonicalize()
        .map_err(|e| SourceError::Failed(format!("copy source {}: {e}", from.display())))?;
    if !root.is_dir() {
        return Err(SourceError::Failed(format!(
            "copy source {} is not a directory",
            from.display()
        )));
    }
    if dest.starts_with(&root) {
        return Err(SourceError::Refused(
            "the copy source contains the job workspace".into(),
        ));
    }
    let mut budget = Budget::new(policy);
    let mut stack = vec![std::path::PathBuf::new()];
    let io = |what: &str, p: &Path, e: std::io::Error| {
        SourceError::Failed(format!("{what} {}: {e}", p.display()))
    };
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| io("reading", &dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io("reading", &dir, e))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let rel_path = rel.join(entry.file_name());
            let src = root.join(&rel_path);
            let dst = dest.join(&rel_path);
            let meta = src.symlink_metadata().map_err(|e| io("reading", &src, e))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&src).map_err(|e| io("reading", &src, e))?;
                if !link_stays_inside(&rel_path, &target) {
                    return Err(SourceError::Refused(format!(
                        "{} is a link to {} outside the copied directory",
                        rel_path.display(),
                        target.display()
                    )));
                }
                budget.take(0)?;
                std::os::unix::fs::symlink(&target, &dst).map_err(|e| io("writing", &dst, e))?;
            } else if kind.is_dir() {
                budget.take(0)?;
                std::fs::create_dir(&dst).map_err(|e| io("writing", &dst, e))?;
                stack.push(rel_path);
            } else if kind.is_file() {
                budget.take(meta.len())?;
                std::fs::copy(&src, &dst).map_err(|e| io("copying", &src, e))?;
            } else {
                return Err(SourceError::Refused(format!(
                    "{} is a special file (device, FIFO or socket)",
                    rel_path.display()
                )));
            }
        }
    }
    Ok(Prepared {
        bytes: budget.bytes,
        entries: budget.entries,
        commit: None,
    })
}
