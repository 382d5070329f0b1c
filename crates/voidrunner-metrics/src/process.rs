//! Process metrics read from `/proc/self` at scrape time (Linux only; absent elsewhere).

/// What `/proc/self` tells about this process.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ProcessSample {
    pub resident_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
}

pub(crate) fn sample() -> ProcessSample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    ProcessSample {
        resident_bytes: field("VmRSS:").map(|kib| kib * 1024),
        threads: field("Threads:"),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_and_files() {
        let s = super::sample();
        assert!(s.resident_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
        assert!(s.threads.is_some_and(|n| n >= 1), "{s:?}");
    }
}
