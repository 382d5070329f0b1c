//! `Range: bytes=…` for the text logs: one range (`a-b`, `a-`, `-n`); anything else (other
//! units, several ranges, syntax errors) is ignored and the whole body is sent, as RFC 9110
//! allows.

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// Not a single byte range: answer `200` with everything.
    Ignored,
    /// Starts past the end (or a suffix of length 0): `416`.
    Unsatisfiable,
    /// Inclusive `start..=end`, clamped to the body: `206`.
    Satisfiable {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
}

/// Parses `value` against a body of `len` bytes.
pub(crate) fn parse_range(value: &str, len: u64) -> ByteRange {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return ByteRange::Ignored;
    };
    if spec.contains(',') {
        return ByteRange::Ignored;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Ignored;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => ByteRange::Ignored,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(_) if len == 0 => ByteRange::Unsatisfiable,
            Ok(n) => ByteRange::Satisfiable {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            Err(_) => ByteRange::Ignored,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return ByteRange::Ignored;
            };
            let end = if b.is_empty() {
                None
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => Some(e),
                    _ => return ByteRange::Ignored,
                }
            };
            if start >= len {
                return ByteRange::Unsatisfiable;
            }
            ByteRange::Satisfiable {
                start,
                end: end.map_or(len - 1, |e| e.min(len - 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        let s = |start, end| ByteRange::Satisfiable { start, end };
        assert_eq!(parse_range("bytes=0-4", 10), s(0, 4));
        assert_eq!(parse_range("bytes=5-", 10), s(5, 9));
        assert_eq!(parse_range("bytes=-3", 10), s(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), s(0, 9));
        assert_eq!(parse_range("bytes=8-100", 10), s(8, 9));
        assert_eq!(parse_range("bytes=10-", 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), ByteRange::Ignored);
        assert_eq!(parse_range("items=0-1", 10), ByteRange::Ignored);
        assert_eq!(parse_range("bytes=4-2", 10), ByteRange::Ignored);
        assert_eq!(parse_range("bytes=x-", 10), ByteRange::Ignored);
    }
}
