//! The corpus's files, for the examples that read it whole.

use std::path::{Path, PathBuf};

/// The files the corpus's `MANIFEST.tsv` lists, else every `.eml` below `dir`; sorted.
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_default();
    let mut out: Vec<PathBuf> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .map(|f| dir.join(f))
        .collect();
    if out.is_empty() {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "eml") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}
