//! The values to hide: a validated set, its immutable matcher snapshot, and a shared registry
//! that grows while a program runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use zeroize::Zeroizing;

use crate::stream::StreamMasker;

/// Shortest secret accepted, in bytes. Shorter values would mask ordinary output (`"1"`, `"yes"`)
/// and reveal by elimination what the secret is.
pub const MIN_SECRET_LEN: usize = 4;

/// Longest secret accepted, in bytes. Bounds what a masker holds back per stream (and the
/// automaton size); a certificate chain fits, a runtime registration of a huge blob does not.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

/// Default cap on the number of values in a [`SecretRegistry`], so a program registering values
/// at runtime cannot make every registration an ever slower rebuild.
pub const DEFAULT_MAX_VALUES: usize = 1024;

/// Above this many bytes of values in total, the matcher uses an NFA instead of a DFA.
const DFA_MAX_BYTES: usize = 4096;

/// What every hidden region of output is replaced with.
pub const REPLACEMENT: &[u8] = b"***";

/// Why a secret value was refused. Never carries the value (nor its length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The value is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("secret value refused: shorter than {min} bytes")]
    TooShort {
        /// The minimum length that applies.
        min: usize,
    },
    /// The value is longer than [`MAX_SECRET_LEN`] bytes.
    #[error("secret value refused: longer than {max} bytes")]
    TooLong {
        /// The maximum length that applies.
        max: usize,
    },
    /// The registry already holds its maximum number of values.
    #[error("secret value refused: at most {max} values can be registered")]
    TooMany {
        /// The cap that applies.
        max: usize,
    },
    /// The automaton over all secrets could not be built (too many or too long values).
    #[error("secret values refused: the matcher could not be built ({reason})")]
    Build {
        /// The automaton builder's reason; it names limits, never pattern bytes.
        reason: String,
    },
}

/// A validated, deduplicated set of secret values that builds [`Matcher`] snapshots.
///
/// Adding values rebuilds the matcher once per call (`extend` adds many with one rebuild);
/// maskers already running keep their old snapshot until they are given the new one, so a
/// rebuild never blocks output that is being masked.
#[derive(Clone, Default)]
pub struct SecretSet {
    /// Sorted and deduplicated; zeroed on drop.
    values: Vec<Zeroizing<Vec<u8>>>,
    matcher: Matcher,
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSet")
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl SecretSet {
    /// An empty set: its matcher passes output through unchanged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from values, refusing the whole batch if any value is too short.
    pub fn from_values<I, V>(values: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut set = Self::new();
        set.extend(values)?;
        Ok(set)
    }

    /// Adds one value; `Ok(false)` if it was already present (no rebuild then).
    pub fn insert(&mut self, value: impl AsRef<[u8]>) -> Result<bool, SecretError> {
        Ok(self.extend([value])? == 1)
    }

    /// Adds values with a single matcher rebuild; returns how many were new (a multi-line
    /// value also adds each of its lines of at least [`MIN_SECRET_LEN`] bytes). All-or-nothing:
    /// if any value is refused, the set is unchanged.
    pub fn extend<I, V>(&mut self, values: I) -> Result<usize, SecretError>
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut merged = self.values.clone();
        let before = merged.len();
        for value in values {
            let value = value.as_ref();
            if value.len() < MIN_SECRET_LEN {
                return Err(SecretError::TooShort {
                    min: MIN_SECRET_LEN,
                });
            }
            if value.len() > MAX_SECRET_LEN {
                return Err(SecretError::TooLong {
                    max: MAX_SECRET_LEN,
                });
            }
            // A multi-line value also masks each of its lines: programs often print such a
            // value transformed (a repr or JSON string escapes the newlines), and then only
            // its lines appear verbatim. Lines too short to mask safely are skipped.
            let lines = value
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| l.len() >= MIN_SECRET_LEN && l.len() < value.len());
            for v in std::iter::once(value).chain(lines) {
                if let Err(at) = merged.binary_search_by(|m| m.as_slice().cmp(v)) {
                    merged.insert(at, Zeroizing::new(v.to_vec()));
                }
            }
        }
        let added = merged.len() - before;
        if added > 0 {
            self.matcher = Matcher::build(&merged)?;
            self.values = merged;
        }
        Ok(added)
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The current immutable snapshot (a cheap `Arc` clone) for maskers.
    pub fn matcher(&self) -> Matcher {
        self.matcher.clone()
    }
}

/// An immutable snapshot of a [`SecretSet`]: the automaton plus what the streaming pass needs to
/// decide how many trailing bytes to hold back. Cloning is cheap and shares the automaton.
#[derive(Clone, Default)]
pub struct Matcher {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    automaton: AhoCorasick,
    /// Sorted copies of the values, for "is this tail a prefix of a secret" checks.
    sorted: Vec<Zeroizing<Vec<u8>>>,
    /// Bit per byte value that starts some secret.
    first_byte: [u64; 4],
    /// Bit per (byte, byte) pair that starts some secret (all secrets have >= 2 bytes).
    first_pair: Box<[u64; 1024]>,
    max_len: usize,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

fn bit(set: &[u64], index: usize) -> bool {
    set[index / 64] & (1 << (index % 64)) != 0
}

impl Matcher {
    fn build(sorted: &[Zeroizing<Vec<u8>>]) -> Result<Self, SecretError> {
        if sorted.is_empty() {
            return Ok(Self::default());
        }
        // A DFA scans fastest but its build is quadratic for repetitive values (a 4 KiB run of
        // one byte takes ~0.15 s) and its memory grows with 256 columns per state: only for
        // small sets. The contiguous NFA builds in linear time.
        let total: usize = sorted.iter().map(|v| v.len()).sum();
        let kind = if total <= DFA_MAX_BYTES {
            AhoCorasickKind::DFA
        } else {
            AhoCorasickKind::ContiguousNFA
        };
        // Standard semantics so that overlapping search reports every occurrence, which lets the
        // pass hide the union of all of them (longest-match included), see README.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(kind))
            .build(sorted.iter().map(|v| v.as_slice()))
            .map_err(|e| SecretError::Build {
                reason: e.to_string(),
            })?;
        let mut first_byte = [0u64; 4];
        let mut first_pair = Box::new([0u64; 1024]);
        for value in sorted {
            let (a, b) = (usize::from(value[0]), usize::from(value[1]));
            first_byte[a / 64] |= 1 << (a % 64);
            let pair = a * 256 + b;
            first_pair[pair / 64] |= 1 << (pair % 64);
        }
        Ok(Self {
            inner: Some(Arc::new(Inner {
                automaton,
                sorted: sorted.to_vec(),
                first_byte,
                first_pair,
                max_len: sorted.iter().map(|v| v.len()).max().unwrap_or(0),
            })),
        })
    }

    /// Number of secrets in this snapshot.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.sorted.len())
    }

    /// True when this snapshot masks nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// Length of the longest secret: a stream masker never holds back more than this minus one.
    pub fn max_len(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.max_len)
    }

    /// Masks a whole buffer at once (same result as streaming it in any chunks).
    pub fn mask_all(&self, data: &[u8]) -> Vec<u8> {
        let mut masker = StreamMasker::new(self.clone());
        let mut out = Vec::with_capacity(data.len());
        masker.push(data, &mut out);
        masker.finish(&mut out);
        out
    }

    /// Every occurrence `(start, end)` in `hay` with `start < limit`, sorted by start.
    pub(crate) fn occurrences(&self, hay: &[u8], limit: usize, out: &mut Vec<(usize, usize)>) {
        out.clear();
        let Some(inner) = &self.inner else { return };
        if limit == 0 {
            return;
        }
        // An occurrence starting before `limit` ends at most at limit - 1 + max_len.
        let end = hay.len().min(limit - 1 + inner.max_len);
        for m in inner.automaton.find_overlapping_iter(&hay[..end]) {
            if m.start() < limit {
                out.push((m.start(), m.end()));
            }
        }
        out.sort_unstable();
    }

    /// The earliest position `t` such that `buf[t..]` is a proper prefix of some secret, i.e. an
    /// occurrence could start at `t` and finish in data not seen yet; `buf.len()` if none.
    /// Only the last `max_len - 1` positions can qualify.
    pub(crate) fn hold_point(&self, buf: &[u8]) -> usize {
        let n = buf.len();
        let Some(inner) = &self.inner else { return n };
        let lo = n.saturating_sub(inner.max_len - 1);
        (lo..n)
            .find(|&t| inner.is_proper_prefix(&buf[t..]))
            .unwrap_or(n)
    }
}

impl Inner {
    fn is_proper_prefix(&self, x: &[u8]) -> bool {
        match x {
            [] => return false,
            [a] => return bit(&self.first_byte, usize::from(*a)),
            [a, b, ..] => {
                if !bit(
                    &self.first_pair[..],
                    usize::from(*a) * 256 + usize::from(*b),
                ) {
                    return false;
                }
            }
        }
        // Values with prefix `x` sort right after `x`; `x` itself may come first.
        let at = self.sorted.partition_point(|v| v.as_slice() < x);
        self.sorted[at..]
            .iter()
            .take(2)
            .any(|v| v.len() > x.len() && v.starts_with(x))
    }
}

/// A set of secrets shared by every masker of one execution, growing when the program
/// registers values at runtime. Maskers created with [`SecretRegistry::masker`] notice a
/// registration with one atomic load per chunk and switch to the new snapshot.
#[derive(Clone, Default)]
pub struct SecretRegistry {
    shared: Arc<Shared>,
}

struct Shared {
    /// Serialises registrations; rebuilds happen under this lock only.
    set: Mutex<SecretSet>,
    /// What maskers read: swapped after a rebuild, so a slow rebuild never stalls output.
    current: Mutex<Matcher>,
    version: AtomicU64,
    max_values: usize,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            set: Mutex::default(),
            current: Mutex::default(),
            version: AtomicU64::new(0),
            max_values: DEFAULT_MAX_VALUES,
        }
    }
}

impl fmt::Debug for SecretRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRegistry")
            .field("len", &self.snapshot().len())
            .field("version", &self.version())
            .finish()
    }
}

impl SecretRegistry {
    /// A registry starting from `set` (typically the task's secrets), accepting runtime
    /// registrations up to [`DEFAULT_MAX_VALUES`] values in total.
    pub fn new(set: SecretSet) -> Self {
        Self::with_max_values(set, DEFAULT_MAX_VALUES)
    }

    /// Like [`SecretRegistry::new`] with another cap on the total number of values (the
    /// initial set is always kept, even if larger).
    pub fn with_max_values(set: SecretSet, max_values: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                current: Mutex::new(set.matcher()),
                set: Mutex::new(set),
                version: AtomicU64::new(0),
                max_values,
            }),
        }
    }

    /// Adds a value for every masker of this registry; `Ok(false)` if already known. Output
    /// already released before the call is not re-masked.
    pub fn register(&self, value: impl AsRef<[u8]>) -> Result<bool, SecretError> {
        let mut set = self.lock();
        if set.len() >= self.shared.max_values {
            let value = value.as_ref();
            if set.values.iter().any(|v| v.as_slice() == value) {
                return Ok(false);
            }
            return Err(SecretError::TooMany {
                max: self.shared.max_values,
            });
        }
        let added = set.insert(value)?;
        if added {
            *self
                .shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = set.matcher();
            self.shared.version.fetch_add(1, Ordering::Release);
        }
        Ok(added)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Matcher {
        self.shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A masker for one stream (stdout or stderr) that follows later registrations.
    pub fn masker(&self) -> StreamMasker {
        StreamMasker::following(self.clone())
    }

    pub(crate) fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SecretSet> {
        // A panic while holding the lock cannot leave the set half-updated: `extend` only
        // assigns after every fallible step.
        self.shared
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
