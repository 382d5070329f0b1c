//! What an HTTP answer means for a delivery. Pure so it is table-tested.

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx: the receiver may accept it later.
    Retry,
    /// Any other status (other 4xx, and 1xx/3xx since redirects are not followed): the
    /// receiver refused it; retrying would not help.
    Fail,
}

/// Classifies an HTTP status code.
pub fn classify_status(status: u16) -> Disposition {
    match status {
        200..=299 => Disposition::Delivered,
        408 | 429 | 500..=599 => Disposition::Retry,
        _ => Disposition::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for (s, d) in [
            (200, Disposition::Delivered),
            (204, Disposition::Delivered),
            (299, Disposition::Delivered),
            (301, Disposition::Fail),
            (302, Disposition::Fail),
            (400, Disposition::Fail),
            (401, Disposition::Fail),
            (404, Disposition::Fail),
            (408, Disposition::Retry),
            (410, Disposition::Fail),
            (429, Disposition::Retry),
            (500, Disposition::Retry),
            (502, Disposition::Retry),
            (503, Disposition::Retry),
            (599, Disposition::Retry),
            (100, Disposition::Fail),
        ] {
            assert_eq!(classify_status(s), d, "{s}");
        }
    }
}
