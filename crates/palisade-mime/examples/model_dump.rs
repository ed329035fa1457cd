//! Prints, one line per corpus file, a digest of the whole model `parse_message` builds, so a
//! change meant to make parsing faster can be shown to leave every message's model as it was
//! (usage: `model_dump <corpus dir> [file...]`; with files, their full models instead).
//!
//! Compare two builds with `diff <(old/model_dump DIR) <(new/model_dump DIR)`.

use std::fmt::Write as _;
use std::path::Path;

use palisade_mime::{ParseLimits, parse_message};
use sha2::{Digest, Sha256};

#[path = "shared/corpus.rs"]
mod corpus;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: model_dump <corpus dir> [file...]");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let limits = ParseLimits::default();
    let chosen: Vec<String> = args.collect();
    if !chosen.is_empty() {
        for file in chosen {
            match std::fs::read(dir.join(&file)) {
                Ok(raw) => println!("{file}\n{:#?}", parse_message(&raw, &limits)),
                Err(e) => eprintln!("{file}: {e}"),
            }
        }
        return;
    }
    for path in corpus::files(dir) {
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let model = format!("{:?}", parse_message(&raw, &limits));
        let digest = Sha256::digest(model.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        println!(
            "{}\t{hex}",
            path.strip_prefix(dir).unwrap_or(&path).display()
        );
    }
}
