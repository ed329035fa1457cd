//! Parse throughput of `palisade-mime` against bare mail-parser on a corpus (issue 12).
//!
//! `cargo run -p palisade-mime --example parse_bench --release -- <corpus dir> [passes]`
//!
//! Every message is read into memory first, so only parsing is timed. Each pass times both
//! parsers over the whole corpus, alternating which goes first so neither always runs on a
//! warmer cache. "Bare" is `MessageParser::default().parse(raw)`: every registered header
//! parsed, the MIME tree built, nothing else. `palisade-mime` is what ingest runs:
//! `parse_message`, which parses and then builds the stored model (bodies, participants,
//! threading keys, structure, privacy features). It prints one JSON line with the median pass.
//! A measurement, never an assertion.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "shared/corpus.rs"]
mod corpus;

use corpus::files;

/// The allocator lmtp-ingest parses with, for both parsers: the model is many small strings,
/// and the system allocator would weigh them as the daemon never does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use mail_parser::MessageParser;
use palisade_mime::{ParseLimits, parse_message};

fn time_bare(corpus: &[Vec<u8>]) -> Duration {
    let parser = MessageParser::default();
    let start = Instant::now();
    for raw in corpus {
        black_box(parser.parse(black_box(raw.as_slice())));
    }
    start.elapsed()
}

fn time_palisade(corpus: &[Vec<u8>]) -> Duration {
    let limits = ParseLimits::default();
    let start = Instant::now();
    for raw in corpus {
        black_box(parse_message(black_box(raw.as_slice()), &limits));
    }
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: parse_bench <corpus dir> [passes]");
        std::process::exit(2);
    };
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(5).max(1);
    let corpus: Vec<Vec<u8>> = files(Path::new(&dir))
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    if corpus.is_empty() {
        eprintln!("parse_bench: no messages under {dir}");
        std::process::exit(1);
    }
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    // One untimed pass of each: page in the corpus and build the parsers' lazy tables.
    time_bare(&corpus);
    time_palisade(&corpus);
    let (mut bare, mut palisade) = (Vec::new(), Vec::new());
    for pass in 0..passes {
        if pass % 2 == 0 {
            bare.push(time_bare(&corpus));
            palisade.push(time_palisade(&corpus));
        } else {
            palisade.push(time_palisade(&corpus));
            bare.push(time_bare(&corpus));
        }
    }
    let (bare, palisade) = (median(bare), median(palisade));
    let n = corpus.len() as f64;
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{{\"messages\":{},\"bytes\":{},\"passes\":{},\"bare_seconds\":{:.6},\"palisade_seconds\":{:.6},\
         \"bare_msg_per_s\":{:.1},\"palisade_msg_per_s\":{:.1},\"bare_mib_per_s\":{:.2},\
         \"palisade_mib_per_s\":{:.2},\"time_ratio\":{:.3}}}",
        corpus.len(),
        bytes,
        passes,
        bare.as_secs_f64(),
        palisade.as_secs_f64(),
        n / bare.as_secs_f64(),
        n / palisade.as_secs_f64(),
        mib / bare.as_secs_f64(),
        mib / palisade.as_secs_f64(),
        palisade.as_secs_f64() / bare.as_secs_f64(),
    );
}
