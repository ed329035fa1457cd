//! `palisade-admin parse`: Palisade's parse of mail files as JSON lines, for the parse-fidelity
//! suite (`lmtp-ingest/e2e/fidelity`) and for looking at one odd message by hand.
//!
//! It needs no configuration and no backend: it is the parser alone, with default limits, so
//! what it prints is what delivery would store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use palisade_config::Config;
use palisade_mime::parse_message;
use palisade_model::{MessageContent, Participant, ParticipantRole};
use serde_json::{Value, json};

/// Files under `root` (itself when it is a file), sorted by path; directories are walked
/// recursively, symbolic links to directories are not followed (no cycles).
pub fn mail_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if std::fs::metadata(root)?.is_dir() {
        walk(root, &mut files)?;
    } else {
        files.push(root.to_path_buf());
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), files)?;
        } else if kind.is_file() || (kind.is_symlink() && entry.path().is_file()) {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// The name a file is reported under: its path relative to `root`, or its file name when
/// `root` is the file itself.
pub fn display_name(root: &Path, file: &Path) -> String {
    let relative = match file.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel,
        _ => file.file_name().map(Path::new).unwrap_or(file),
    };
    relative.to_string_lossy().into_owned()
}

/// One output line for `file`: its parse, or `{"file", "error"}` when it cannot be read or is
/// larger than `max_bytes` (the LMTP size limit: delivery would refuse it, and reading it
/// whole could exhaust memory).
pub fn parse_file(name: &str, file: &Path, max_bytes: usize) -> Value {
    let error = |message: String| json!({ "file": name, "error": message });
    let mut raw = Vec::new();
    // One byte past the limit tells "too large" without trusting the size metadata (which
    // may change under us) and without reading more than the limit.
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    match std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut raw)) {
        Err(e) => error(format!("cannot read: {e}")),
        Ok(n) if n > max_bytes => error(format!(
            "larger than the LMTP size limit of {max_bytes} bytes"
        )),
        Ok(_) => parse_view(
            name,
            &parse_message(&raw, &crate::parse_limits(&Config::default())),
        ),
    }
}

/// The fields the fidelity suite compares, as one JSON object.
pub fn parse_view(name: &str, content: &MessageContent) -> Value {
    let people = |role: ParticipantRole| -> Vec<Value> {
        content
            .participants
            .iter()
            .filter(|p| p.role == role)
            .map(person)
            .collect()
    };
    let attachments: Vec<Value> = content
        .attachments
        .iter()
        .map(|a| json!({ "file_name": a.file_name, "content_type": a.content_type }))
        .collect();
    json!({
        "file": name,
        "subject": content.subject,
        "from": people(ParticipantRole::From),
        "to": people(ParticipantRole::To),
        "cc": people(ParticipantRole::Cc),
        "date": content.date.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "attachments": attachments,
        "text": content.text_body,
        "html": content.html_body,
        "multiple_from": content.privacy.multiple_from,
        "parse_error": content.parse_error,
    })
}

fn person(p: &Participant) -> Value {
    json!({ "name": p.name, "address": p.address })
}

/// Prints one JSON line per file under `root` to `out`, reading and parsing one file at a
/// time so memory stays bounded by the largest accepted message. Returns the number of files.
pub fn write_parses(root: &Path, max_bytes: usize, out: &mut dyn Write) -> std::io::Result<usize> {
    let files = mail_files(root)?;
    for file in &files {
        let line = parse_file(&display_name(root, file), file, max_bytes);
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("palisade-parse-view-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        dir
    }

    #[test]
    fn walks_sorted_relative_and_refuses_oversized_files() {
        let dir = temp_dir("walk");
        std::fs::write(
            dir.join("sub/b.eml"),
            "From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n",
        )
        .unwrap();
        std::fs::write(dir.join("a.eml"), vec![b'x'; 200]).unwrap();
        let mut out = Vec::new();
        let n = write_parses(&dir, 100, &mut out).unwrap();
        assert_eq!(n, 2);
        let lines: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines[0]["file"], "a.eml");
        assert!(lines[0]["error"].as_str().unwrap().contains("100 bytes"));
        let sub = Path::new("sub").join("b.eml");
        assert_eq!(lines[1]["file"], sub.to_string_lossy().as_ref());
        assert!(lines[1]["error"].is_null());

        let mut out = Vec::new();
        write_parses(&dir.join("sub/b.eml"), 1 << 20, &mut out).unwrap();
        let line: Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(line["file"], "b.eml");
        assert_eq!(line["subject"], "hi");
        assert_eq!(
            line["from"],
            json!([{ "name": "A", "address": "a@example.test" }])
        );
        assert_eq!(line["to"][0]["address"], "b@example.test");
        assert_eq!(line["text"].as_str().map(str::trim_end), Some("body"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_path_is_an_error_not_an_empty_run() {
        let mut out = Vec::new();
        assert!(write_parses(Path::new("/nonexistent/palisade"), 10, &mut out).is_err());
    }
}
