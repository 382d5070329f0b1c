//! Throughput of `StreamMasker` over 50 MB of program-like output in 4 KiB chunks.
//!
//! Run with `cargo bench -p voidrunner-mask`. Prints MB/s (10^6 bytes per second) for 10 and
//! 100 secrets of 32 bytes (and 10 PEM-sized ones of 2 KiB, the worst case for the hold-back
//! check), with no occurrence and with one occurrence per ~64 KiB of output.

use std::hint::black_box;
use std::time::Instant;

use voidrunner_mask::{SecretSet, StreamMasker};

const TOTAL: usize = 50_000_000;
const CHUNK: usize = 4096;

/// Deterministic xorshift so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn token(rng: &mut Rng, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize])
        .collect()
}

/// Log-like lines: words, numbers, newlines; optionally a secret every ~64 KiB.
fn output(rng: &mut Rng, secrets: &[Vec<u8>], with_hits: bool) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"step",
        b"ok",
        b"processing",
        b"item",
        b"value=",
        b"done",
        b"token",
        b"test",
    ];
    let mut out = Vec::with_capacity(TOTAL + 256);
    let mut next_hit = 65_536;
    while out.len() < TOTAL {
        for _ in 0..8 {
            out.extend_from_slice(words[(rng.next() % 8) as usize]);
            out.push(b' ');
            out.extend_from_slice((rng.next() % 100_000).to_string().as_bytes());
            out.push(b' ');
        }
        if with_hits && out.len() > next_hit {
            out.extend_from_slice(&secrets[(rng.next() % secrets.len() as u64) as usize]);
            next_hit += 65_536;
        }
        out.push(b'\n');
    }
    out.truncate(TOTAL);
    out
}

fn run(count: usize, secret_len: usize, with_hits: bool) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ count as u64);
    let secrets: Vec<Vec<u8>> = (0..count).map(|_| token(&mut rng, secret_len)).collect();
    let set = SecretSet::from_values(&secrets).expect("secrets");
    let data = output(&mut rng, &secrets, with_hits);
    let mut best = f64::INFINITY;
    let mut masked_len = 0;
    for _ in 0..3 {
        let mut masker = StreamMasker::new(set.matcher());
        let mut out = Vec::with_capacity(CHUNK * 2);
        masked_len = 0;
        let started = Instant::now();
        for chunk in data.chunks(CHUNK) {
            out.clear();
            masker.push(black_box(chunk), &mut out);
            masked_len += black_box(&out).len();
        }
        out.clear();
        masker.finish(&mut out);
        masked_len += out.len();
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{count:>3} secrets of {secret_len:>4} B, {:<14} {:>8.1} MB/s  ({} MB in {:.3} s, best of 3, output {} bytes)",
        if with_hits {
            "hit per 64 KiB"
        } else {
            "no occurrence"
        },
        TOTAL as f64 / best / 1e6,
        TOTAL / 1_000_000,
        best,
        masked_len,
    );
}

/// Worst case for the hold-back check: a periodic 2 KiB secret and output that keeps almost
/// matching it, so each candidate tail is compared over a long common prefix.
fn adversarial() {
    let secret = b"ab".repeat(1024);
    let set = SecretSet::from_values([&secret]).expect("secret");
    let mut line = b"ab".repeat(1023);
    line.push(b'x');
    let data: Vec<u8> = line.iter().copied().cycle().take(TOTAL / 5).collect();
    let mut masker = StreamMasker::new(set.matcher());
    let mut out = Vec::with_capacity(CHUNK * 2);
    let started = Instant::now();
    for chunk in data.chunks(CHUNK) {
        out.clear();
        masker.push(black_box(chunk), &mut out);
    }
    masker.finish(&mut out);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  1 secret  of 2048 B, adversarial    {:>8.1} MB/s  ({} MB in {secs:.3} s)",
        data.len() as f64 / secs / 1e6,
        data.len() / 1_000_000,
    );
}

fn main() {
    for (count, secret_len) in [(10, 32), (100, 32), (10, 2048)] {
        run(count, secret_len, false);
        run(count, secret_len, true);
    }
    adversarial();
}
