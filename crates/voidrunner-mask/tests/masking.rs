//! Masking behaviour: named cases under every chunking, a seeded property test against a naive
//! oracle, runtime registration, and that secrets never show up in `Debug` or errors.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use voidrunner_mask::{MIN_SECRET_LEN, SecretError, SecretRegistry, SecretSet, StreamMasker};

/// Independent oracle: every occurrence of every secret found by brute force; runs of
/// overlapping occurrences become one `***`, touching-but-disjoint ones stay separate.
fn oracle(secrets: &[&[u8]], data: &[u8]) -> Vec<u8> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for start in 0..data.len() {
        for s in secrets {
            if data[start..].starts_with(s) {
                spans.push((start, start + s.len()));
            }
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (s, e) in merged {
        out.extend_from_slice(&data[at..s]);
        out.extend_from_slice(b"***");
        at = e;
    }
    out.extend_from_slice(&data[at..]);
    out
}

fn set(secrets: &[&[u8]]) -> SecretSet {
    SecretSet::from_values(secrets).expect("valid secrets")
}

/// Streams `chunks` through a fresh masker, checking the hold-back bound after every push.
fn stream(set: &SecretSet, chunks: &[&[u8]]) -> Vec<u8> {
    let matcher = set.matcher();
    let mut masker = StreamMasker::new(matcher.clone());
    let mut out = Vec::new();
    for chunk in chunks {
        masker.push(chunk, &mut out);
        assert!(masker.held_len() < matcher.max_len().max(1));
    }
    masker.finish(&mut out);
    assert_eq!(masker.held_len(), 0);
    out
}

/// Checks `data` against `expected` whole, in 1-byte chunks, split at every point and at every
/// pair of points (with empty chunks in between).
fn check_all_chunkings(secrets: &[&[u8]], data: &[u8], expected: &[u8]) {
    let set = set(secrets);
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        show(&oracle(secrets, data)),
        show(expected),
        "oracle disagrees"
    );
    assert_eq!(
        show(&set.matcher().mask_all(data)),
        show(expected),
        "mask_all"
    );
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(show(&stream(&set, &bytes)), show(expected), "1-byte chunks");
    for i in 0..=data.len() {
        let got = stream(&set, &[&data[..i], b"", &data[i..]]);
        assert_eq!(show(&got), show(expected), "split at {i}");
        for j in i..=data.len() {
            let got = stream(&set, &[&data[..i], &data[i..j], b"", &data[j..]]);
            assert_eq!(show(&got), show(expected), "split at {i} and {j}");
        }
    }
}

#[test]
fn secret_split_across_chunks() {
    check_all_chunkings(
        &[b"hunter2-pass"],
        b"login with hunter2-pass now",
        b"login with *** now",
    );
}

#[test]
fn overlapping_secrets_longest_wins() {
    let secrets: &[&[u8]] = &[b"abcd", b"abcdef"];
    check_all_chunkings(secrets, b"xabcdefx", b"x***x");
    check_all_chunkings(secrets, b"xabcdex", b"x***ex");
    check_all_chunkings(secrets, b"abcdef", b"***");
    check_all_chunkings(secrets, b"abcdabcdef", b"******");
}

#[test]
fn overlapping_occurrences_of_different_secrets_leave_no_fragment() {
    // Longest-leftmost alone would print `***ef`, leaking the tail of `cdef`.
    check_all_chunkings(&[b"abcd", b"cdef"], b"1abcdef2", b"1***2");
    check_all_chunkings(&[b"aaaa"], b"aaaaaa", b"***");
    check_all_chunkings(&[b"abab"], b"xababab", b"x***");
}

#[test]
fn adjacent_repeated_secrets() {
    check_all_chunkings(&[b"tok3n"], b"tok3ntok3ntok3n", b"*********");
    check_all_chunkings(&[b"tok3n"], b"tok3n tok3n", b"*** ***");
}

#[test]
fn multi_line_secret() {
    let key: &[u8] = b"-----BEGIN KEY-----\nMIIEv\nQIBAD\n-----END KEY-----";
    let mut data = b"key:\n".to_vec();
    data.extend_from_slice(key);
    data.extend_from_slice(b"\ndone\n");
    check_all_chunkings(&[key], &data, b"key:\n***\ndone\n");
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_too() {
    // A repr or JSON string escapes the newlines: only the lines appear verbatim.
    let key: &[u8] = b"-----BEGIN KEY-----\r\nMIIEv\nab\nQIBAD\n-----END KEY-----";
    let lines: [&[u8]; 4] = [
        b"-----BEGIN KEY-----",
        b"MIIEv",
        b"QIBAD",
        b"-----END KEY-----",
    ];
    assert_eq!(
        set(&[key]).len(),
        5,
        "the value and its lines of >= 4 bytes"
    );
    let all = [key, lines[0], lines[1], lines[2], lines[3]];
    check_all_chunkings(
        &all,
        b"'-----BEGIN KEY-----\\r\\nMIIEv\\nab\\nQIBAD\\n-----END KEY-----'",
        b"'***\\r\\n***\\nab\\n***\\n***'",
    );
    let mut masked = Vec::new();
    let mut masker = StreamMasker::new(set(&[key]).matcher());
    masker.push(b"x MIIEv y", &mut masked);
    masker.finish(&mut masked);
    assert_eq!(masked, b"x *** y");
}

#[test]
fn secrets_that_are_prefixes_or_suffixes_of_each_other() {
    let secrets: &[&[u8]] = &[b"1234", b"001234", b"12345678"];
    check_all_chunkings(secrets, b"a001234b", b"a***b");
    check_all_chunkings(secrets, b"a1234567b", b"a***567b");
    check_all_chunkings(secrets, b"a0012345678b", b"a***b");
    check_all_chunkings(secrets, b"0012 1234", b"0012 ***");
}

#[test]
fn binary_data_and_no_secret() {
    let secret: &[u8] = &[0xff, 0x00, 0xfe, 0x80, 0x00];
    let data = [
        0x00, 0xff, 0xff, 0x00, 0xfe, 0x80, 0x00, 0xc3, 0x28, 0xff, 0x00,
    ];
    check_all_chunkings(
        &[secret],
        &data,
        &[0x00, 0xff, b'*', b'*', b'*', 0xc3, 0x28, 0xff, 0x00],
    );
    check_all_chunkings(
        &[b"secret-value"],
        b"nothing to hide\n",
        b"nothing to hide\n",
    );
    check_all_chunkings(&[b"secret-value"], b"", b"");
}

#[test]
fn empty_set_passes_output_through() {
    let set = SecretSet::new();
    assert_eq!(stream(&set, &[b"a", b"", b"bc"]), b"abc");
    assert_eq!(set.matcher().mask_all(b"xyz"), b"xyz");
}

#[test]
fn bytes_leave_as_soon_as_they_cannot_start_a_secret() {
    let set = set(&[b"world-secret"]);
    let mut masker = StreamMasker::new(set.matcher());
    let mut out = Vec::new();
    masker.push(b"hello ", &mut out);
    assert_eq!(out, b"hello ");
    masker.push(b"wor", &mut out);
    assert_eq!((out.as_slice(), masker.held_len()), (&b"hello "[..], 3));
    masker.push(b"m\n", &mut out);
    assert_eq!(
        (out.as_slice(), masker.held_len()),
        (&b"hello worm\n"[..], 0)
    );
    masker.push(b"world-sec", &mut out);
    masker.push(b"ret!", &mut out);
    assert_eq!(out, b"hello worm\n***!");
    // Reusable for another stream after finish.
    masker.push(b"world", &mut out);
    masker.finish(&mut out);
    assert_eq!(out, b"hello worm\n***!world");
}

#[test]
fn short_secrets_are_refused_all_or_nothing() {
    let mut set = SecretSet::new();
    let err = set.insert("abc").expect_err("3 bytes accepted");
    assert_eq!(
        err,
        SecretError::TooShort {
            min: MIN_SECRET_LEN
        }
    );
    assert!(set.insert("").is_err());
    assert!(set.extend(["good-value", "no"]).is_err());
    assert!(set.is_empty(), "a refused batch must not be half-applied");
    assert_eq!(set.insert("abcd"), Ok(true));
    assert_eq!(set.insert("abcd"), Ok(false));
    assert_eq!(set.extend(["abcd", "efgh", "efgh"]), Ok(1));
    assert_eq!(set.len(), 2);
    let huge = vec![b'x'; voidrunner_mask::MAX_SECRET_LEN + 1];
    assert_eq!(
        set.insert(&huge),
        Err(SecretError::TooLong {
            max: voidrunner_mask::MAX_SECRET_LEN
        })
    );
    assert_eq!(set.insert(&huge[1..]), Ok(true));
}

#[test]
fn runtime_registrations_are_capped() {
    let registry = SecretRegistry::with_max_values(set(&[b"task-secret"]), 3);
    assert_eq!(registry.register("value-2"), Ok(true));
    assert_eq!(registry.register("value-3"), Ok(true));
    assert_eq!(
        registry.register("value-4"),
        Err(SecretError::TooMany { max: 3 })
    );
    assert_eq!(registry.register("value-3"), Ok(false));
    assert_eq!(registry.snapshot().len(), 3);
}

#[test]
fn debug_and_errors_never_show_secret_bytes() {
    let secret = "sup3r-s3cr3t-v4lue";
    let set = set(&[secret.as_bytes()]);
    let registry = SecretRegistry::new(set.clone());
    let mut masker = StreamMasker::new(set.matcher());
    let mut out = Vec::new();
    masker.push(b"x sup3r-s3cr3t-v4lu", &mut out);
    assert_eq!(masker.held_len(), secret.len() - 1);
    let errors = [
        SecretSet::new().insert("pw1").expect_err("short"),
        SecretSet::new().insert("\u{e9}").expect_err("short"),
    ];
    let shown = format!(
        "{set:?} {:?} {masker:?} {registry:?} {errors:?} {} {}",
        set.matcher(),
        errors[0],
        errors[1],
    );
    for needle in ["sup3r", "4lu", "pw1", "\u{e9}", "115, 117"] {
        assert!(!shown.contains(needle), "{needle:?} in {shown}");
    }
    assert!(shown.contains("held_len: 17"), "{shown}");
}

#[test]
fn runtime_registration_reaches_every_stream_but_is_not_retroactive() {
    let registry = SecretRegistry::new(set(&[b"task-secret"]));
    let (mut stdout, mut stderr) = (registry.masker(), registry.masker());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    stdout.push(b"early dyn-token-42 task-secret\n", &mut out);
    assert_eq!(registry.register("dyn-token-42"), Ok(true));
    assert_eq!(registry.register("dyn-token-42"), Ok(false));
    assert!(registry.register("no").is_err());
    stdout.push(b"later dyn-token-42\n", &mut out);
    stderr.push(b"dyn-token-", &mut err);
    stdout.push(b"task-sec", &mut out);
    stderr.push(b"42 task-secret", &mut err);
    stdout.push(b"ret", &mut out);
    stdout.finish(&mut out);
    stderr.finish(&mut err);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "early dyn-token-42 ***\nlater ***\n***"
    );
    assert_eq!(String::from_utf8_lossy(&err), "*** ***");
    assert_eq!(registry.snapshot().len(), 2);
}

#[test]
fn held_bytes_are_rescanned_with_a_new_snapshot() {
    let mut secrets = set(&[b"alpha-one"]);
    let mut masker = StreamMasker::new(secrets.matcher());
    let mut out = Vec::new();
    masker.push(b"alpha-", &mut out);
    assert_eq!(masker.held_len(), 6);
    secrets.insert("alpha-two").expect("insert");
    masker.set_matcher(secrets.matcher());
    masker.push(b"two alpha-one", &mut out);
    masker.finish(&mut out);
    assert_eq!(out, b"*** ***");
}

/// Random secret sets over a tiny alphabet (so secrets overlap, nest and repeat), random inputs
/// seeded with copies of the secrets, split at random points.
#[test]
fn streaming_equals_whole_buffer_and_oracle_for_random_cases() {
    const ALPHABET: &[u8] = &[b'a', b'b', b'c', b'\n', 0x00, 0xff];
    let mut rng = StdRng::seed_from_u64(0x5eed_ba5e);
    for case in 0..3000 {
        let mut secrets: Vec<Vec<u8>> = (0..rng.gen_range(1..=6))
            .map(|_| {
                let len = rng.gen_range(MIN_SECRET_LEN..=if case % 10 == 0 { 40 } else { 9 });
                (0..len)
                    .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
                    .collect()
            })
            .collect();
        if case % 50 == 0 {
            // Pushes the set past the DFA size limit, so the NFA matcher is exercised too.
            secrets.push(vec![b'z'; 4100]);
        }
        // The set also masks each line (>= MIN_SECRET_LEN) of a multi-line secret.
        let lines: Vec<Vec<u8>> = secrets
            .iter()
            .filter(|s| s.contains(&b'\n'))
            .flat_map(|s| {
                s.split(|&b| b == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            })
            .filter(|l| l.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.extend(lines);
        secrets.sort();
        secrets.dedup();
        let refs: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let mut data = Vec::new();
        for _ in 0..rng.gen_range(0..30) {
            if rng.gen_bool(0.3) {
                data.extend_from_slice(&secrets[rng.gen_range(0..secrets.len())]);
            } else {
                data.push(ALPHABET[rng.gen_range(0..ALPHABET.len())]);
            }
        }
        let set = set(&refs);
        let expected = oracle(&refs, &data);
        assert_eq!(
            set.matcher().mask_all(&data),
            expected,
            "case {case} mask_all"
        );
        for secret in &refs {
            assert!(
                !expected.windows(secret.len()).any(|w| w == *secret),
                "case {case}: secret survives"
            );
        }
        for _ in 0..4 {
            let mut masker = StreamMasker::new(set.matcher());
            let (mut out, mut at) = (Vec::new(), 0);
            while at < data.len() {
                let len = rng.gen_range(0..=(data.len() - at).min(12));
                masker.push(&data[at..at + len], &mut out);
                at += len;
                // Minimal hold-back: what is held is a proper prefix of some secret.
                let held = &data[at - masker.held_len()..at];
                assert!(
                    held.is_empty()
                        || refs
                            .iter()
                            .any(|s| s.len() > held.len() && s.starts_with(held)),
                    "case {case}: held {held:?} though it starts no secret"
                );
            }
            masker.finish(&mut out);
            assert_eq!(out, expected, "case {case}: streamed");
        }
    }
}

#[test]
fn types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<StreamMasker>();
    send_sync::<SecretRegistry>();
    send_sync::<voidrunner_mask::Matcher>();
    send_sync::<voidrunner_mask::SecretBox>();
}

#[test]
fn opened_sealed_values_feed_a_secret_set() {
    let sealer = voidrunner_mask::SecretBox::new(&voidrunner_mask::SecretKey::generate());
    let sealed: Vec<Vec<u8>> = ["db-password-1", "api-token-22"]
        .iter()
        .map(|v| {
            sealer
                .seal_with_context(v.as_bytes(), b"task/1")
                .expect("seal")
        })
        .collect();
    let opened: Vec<_> = sealed
        .iter()
        .map(|s| sealer.open_with_context(s, b"task/1").expect("open"))
        .collect();
    let registry = SecretRegistry::new(SecretSet::from_values(&opened).expect("set"));
    let mut masker = registry.masker();
    let mut out = Vec::new();
    masker.push(b"DB=db-password-1 TOKEN=api-tok", &mut out);
    masker.push(b"en-22\n", &mut out);
    masker.finish(&mut out);
    assert_eq!(out, b"DB=*** TOKEN=***\n");
}
