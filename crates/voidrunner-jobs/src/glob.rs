//! Path globs over `/`-separated relative paths: `*` and `?` match within one segment, `**`
//! matches any number of whole segments (including none). Used for artifacts (and, later,
//! branch and changed-path filters).

/// True when `path` matches `pattern`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match_segments(&pat, &segs)
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|k| match_segments(rest, &segs[k..])),
        Some((p, rest)) => match segs.split_first() {
            Some((s, tail)) => {
                match_segment(p.as_bytes(), s.as_bytes()) && match_segments(rest, tail)
            }
            None => false,
        },
    }
}

fn match_segment(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| match_segment(rest, &s[k..])),
        Some((b'?', rest)) => !s.is_empty() && match_segment(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && match_segment(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn segment_globs_match_like_the_reference_vectors() {
        let cases = [
            ("main", "main", true),
            ("main", "develop", false),
            ("feature/*", "feature/foo", true),
            ("feature/*", "feature/foo/bar", false),
            ("feature/*", "bugfix/foo", false),
            ("feature/**", "feature/foo/bar/baz", true),
            ("**", "main", true),
            ("**", "feature/branch", true),
            ("*/main", "release/main", true),
            ("*/main", "main", false),
            ("release/*.*", "release/1.0", true),
            ("release/*.*", "release/v1", false),
            ("release-?", "release-a", true),
            ("release-?", "release-12", false),
            ("org/**/main", "org/main", true),
            ("org/**/main", "org/team/sub/main", true),
            ("src/**", "src/main.py", true),
            ("*.py", "src/main.py", false),
            ("artifacts/**", "artifacts/a/b.tgz", true),
            ("src/**/*.log", "src/x.log", true),
            ("src/**/*.log", "src/a/b/x.log", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p, s), want, "{p} ~ {s}");
        }
    }
}
