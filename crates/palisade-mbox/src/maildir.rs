//! Maildir: one file per message under `cur/` and `new/`, and Maildir++ folders (`.Name/`)
//! beside them. Flags are in the file name, after `:2,`.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::{Entry, Message};

/// The flags a Maildir file name carries (`:2,FRS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaildirFlags {
    /// `S`: seen.
    pub seen: bool,
    /// `F`: flagged.
    pub flagged: bool,
    /// `R`: replied.
    pub replied: bool,
    /// `T`: trashed.
    pub trashed: bool,
    /// `D`: draft.
    pub draft: bool,
}

impl MaildirFlags {
    /// The flags of a Maildir file name; none when it has no `:2,` part.
    pub fn from_file_name(name: &str) -> Self {
        let info = name
            .rsplit_once(":2,")
            .or_else(|| name.rsplit_once("!2,"))
            .map_or("", |(_, info)| info);
        MaildirFlags {
            seen: info.contains('S'),
            flagged: info.contains('F'),
            replied: info.contains('R'),
            trashed: info.contains('T'),
            draft: info.contains('D'),
        }
    }
}

/// Reads every message of a Maildir and its Maildir++ folders, in a stable order (folder,
/// then `new` before `cur`, then file name).
pub struct MaildirReader {
    files: std::vec::IntoIter<PathBuf>,
    max_bytes: usize,
    index: usize,
}

impl MaildirReader {
    /// Lists the messages under `root` (which must hold `cur` or `new`); files are read one
    /// at a time as the iterator advances.
    pub fn open(root: &Path, max_bytes: usize) -> io::Result<Self> {
        if !root.join("cur").is_dir() && !root.join("new").is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a Maildir (no cur/ or new/)", root.display()),
            ));
        }
        let mut folders = vec![root.to_path_buf()];
        let mut subfolders: Vec<PathBuf> = fs::read_dir(root)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .filter(|p| p.join("cur").is_dir() || p.join("new").is_dir())
            .collect();
        subfolders.sort();
        folders.extend(subfolders);
        let mut files = Vec::new();
        for folder in folders {
            for sub in ["new", "cur"] {
                let dir = folder.join(sub);
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.path())
                    .collect();
                names.sort();
                files.extend(names);
            }
        }
        Ok(MaildirReader {
            files: files.into_iter(),
            max_bytes,
            index: 0,
        })
    }

    /// How many messages the Maildir holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.files.len() == 0
    }

    fn read(&self, path: &Path, index: usize) -> io::Result<Entry> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let origin = path.display().to_string();
        let limit = u64::try_from(self.max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut raw = Vec::new();
        fs::File::open(path)?.take(limit).read_to_end(&mut raw)?;
        if raw.len() > self.max_bytes {
            let size = fs::metadata(path).map_or(limit, |m| m.len());
            return Ok(Entry::TooLarge {
                index,
                origin,
                size,
            });
        }
        // Maildir names start with the delivery time in seconds.
        let delivered_at = name
            .split('.')
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|secs| DateTime::<Utc>::from_timestamp(secs, 0));
        Ok(Entry::Message(Message {
            index,
            origin,
            raw,
            sender: None,
            delivered_at,
            flags: MaildirFlags::from_file_name(&name),
        }))
    }
}

impl Iterator for MaildirReader {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let path = self.files.next()?;
        let index = self.index;
        self.index += 1;
        Some(self.read(&path, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_folders_flags_and_times_and_skips_large_files() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        for sub in ["cur", "new", "tmp", ".Work/cur", ".Work/new"] {
            fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        fs::write(root.join("new/1700000001.M1P1.host"), b"S: new\n\nx\n").expect("write");
        fs::write(
            root.join("cur/1700000000.M1P1.host:2,FS"),
            b"S: seen\n\nx\n",
        )
        .expect("w");
        fs::write(root.join("cur/1700000002.M1P1.host:2,"), vec![b'x'; 500]).expect("w");
        fs::write(root.join("tmp/1700000003.M1P1.host"), b"S: tmp\n\nx\n").expect("w");
        fs::write(
            root.join(".Work/cur/1700000004.M1P1.host:2,R"),
            b"S: w\n\nx\n",
        )
        .expect("w");
        let reader = MaildirReader::open(root, 100).expect("open");
        assert_eq!(reader.len(), 4, "tmp/ holds deliveries in progress");
        let entries: Vec<Entry> = reader.collect::<io::Result<_>>().expect("read");
        let Entry::Message(first) = &entries[0] else {
            panic!("{entries:?}")
        };
        assert_eq!(first.raw, b"S: new\n\nx\n");
        assert_eq!(
            first.delivered_at,
            DateTime::<Utc>::from_timestamp(1_700_000_001, 0)
        );
        let Entry::Message(seen) = &entries[1] else {
            panic!("{entries:?}")
        };
        assert!(seen.flags.seen && seen.flags.flagged && !seen.flags.replied);
        assert!(matches!(entries[2], Entry::TooLarge { size: 500, .. }));
        let Entry::Message(work) = &entries[3] else {
            panic!("{entries:?}")
        };
        assert!(work.flags.replied);
        assert!(MaildirReader::open(&root.join("cur"), 100).is_err());
    }
}
