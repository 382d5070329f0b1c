//! Paths a job definition names (working directories, artifacts) are relative to the job
//! root `/job` and must stay inside it. The check is lexical here (at validation time, before
//! anything exists); the runner canonicalizes again against the real workspace, so a symlink
//! planted by a step cannot lead outside either.

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Empty, or only `.` components.
    #[error("must name something inside the job root")]
    Empty,
    /// Absolute and not under `/job/`.
    #[error("must be relative to /job (or start with /job/)")]
    Absolute,
    /// `..` climbs out of the job root.
    #[error("escapes the job root with '..'")]
    Escapes,
    /// NUL or another control character.
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Normalizes `path` to `a/b/c` relative to the job root: `/job/x` becomes `x`, `.` and empty
/// components vanish, `x/../y` becomes `y`; anything that leaves the root is refused.
pub fn workspace_relative(path: &str) -> Result<String, PathError> {
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    let rest = if let Some(abs) = path.strip_prefix('/') {
        match abs.strip_prefix("job") {
            Some("") => "",
            Some(r) if r.starts_with('/') => r,
            _ => return Err(PathError::Absolute),
        }
    } else {
        path
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes);
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_inside_and_refuses_outside() {
        assert_eq!(workspace_relative("src"), Ok("src".into()));
        assert_eq!(workspace_relative("./src//build/"), Ok("src/build".into()));
        assert_eq!(workspace_relative("/job/src/a"), Ok("src/a".into()));
        assert_eq!(
            workspace_relative("src/../artifacts"),
            Ok("artifacts".into())
        );
        assert_eq!(workspace_relative("src/**/*.o"), Ok("src/**/*.o".into()));
        assert_eq!(workspace_relative("../etc"), Err(PathError::Escapes));
        assert_eq!(workspace_relative("src/../../etc"), Err(PathError::Escapes));
        assert_eq!(workspace_relative("/job/../etc"), Err(PathError::Escapes));
        assert_eq!(workspace_relative("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(workspace_relative("/jobx/a"), Err(PathError::Absolute));
        assert_eq!(workspace_relative("."), Err(PathError::Empty));
        assert_eq!(workspace_relative("/job"), Err(PathError::Empty));
        assert_eq!(workspace_relative("a\0b"), Err(PathError::ControlCharacter));
    }
}
