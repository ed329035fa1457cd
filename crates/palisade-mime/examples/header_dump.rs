//! Prints, one line per corpus file, what the parser made of its headers, so two parser
//! versions can be compared with `diff` (usage: `header_dump <corpus dir>`).

use std::path::{Path, PathBuf};

use palisade_mime::{ParseLimits, parse_message};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/corpus".to_string());
    let mut paths = Vec::new();
    files(Path::new(&dir), &mut paths);
    paths.sort();
    for path in paths {
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let m = parse_message(&raw, &ParseLimits::default());
        let people: Vec<_> = m
            .participants
            .iter()
            .map(|p| format!("{:?}:{:?}<{:?}>", p.role, p.name, p.address))
            .collect();
        let names: Vec<_> = m.attachments.iter().map(|a| &a.file_name).collect();
        println!(
            "{}\tsubject={:?}\tdate={:?}\tpeople={:?}\tfiles={:?}",
            path.strip_prefix(&dir).unwrap_or(&path).display(),
            m.subject,
            m.date.map(|d| d.to_rfc3339()),
            people,
            names,
        );
    }
}
