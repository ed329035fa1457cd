//! Autocrypt Level 1: the `Autocrypt:` header mail carries, and the per-contact state it
//! updates (<https://autocrypt.org/level1.html>).
//!
//! A header holds the sender's address, an optional `prefer-encrypt=mutual` and the
//! sender's OpenPGP transferable public key in base64. Everything here is bounded: a value
//! longer than [`MAX_AUTOCRYPT_HEADER_CHARS`] or a key larger than
//! [`MAX_AUTOCRYPT_KEY_BYTES`] is refused before it is decoded further.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::address::Address;

/// Largest key kept, in bytes once decoded: a real key with a few subkeys and signatures
/// is 1 to 8 KiB, and a contact row must stay small.
pub const MAX_AUTOCRYPT_KEY_BYTES: usize = 16 * 1024;

/// Longest header value read: the base64 of the largest key, its folding and attributes.
pub const MAX_AUTOCRYPT_HEADER_CHARS: usize = MAX_AUTOCRYPT_KEY_BYTES * 3 / 2 + 1024;

/// Most OpenPGP packets walked in one key, so a key of tiny packets cannot cost much.
const MAX_PACKETS: usize = 256;

/// The sender's wish about encryption (`prefer-encrypt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreferEncrypt {
    /// No `prefer-encrypt=mutual`: the sender has not asked for encryption by default.
    #[default]
    NoPreference,
    /// `prefer-encrypt=mutual`: encrypt by default when both sides ask for it.
    Mutual,
}

impl PreferEncrypt {
    /// The attribute value as written in a header.
    pub fn as_str(self) -> &'static str {
        match self {
            PreferEncrypt::NoPreference => "nopreference",
            PreferEncrypt::Mutual => "mutual",
        }
    }
}

/// Why an `Autocrypt:` header (or a key offered as one) is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutocryptError {
    /// The value is longer than any header carrying an acceptable key.
    #[error("the Autocrypt header is longer than {MAX_AUTOCRYPT_HEADER_CHARS} characters")]
    TooLong,
    /// `addr` is missing or not an address.
    #[error("the Autocrypt header has no valid addr")]
    Addr,
    /// `keydata` is missing.
    #[error("the Autocrypt header has no keydata")]
    MissingKeydata,
    /// An attribute appears twice.
    #[error("the Autocrypt attribute {0:?} appears twice")]
    Duplicate(String),
    /// An attribute we do not know and that does not start with `_`: the spec says to
    /// ignore the whole header.
    #[error("unknown critical Autocrypt attribute {0:?}")]
    UnknownAttribute(String),
    /// `keydata` is not base64.
    #[error("the key is not valid base64")]
    Base64,
    /// The key is larger than [`MAX_AUTOCRYPT_KEY_BYTES`].
    #[error("the key is larger than {MAX_AUTOCRYPT_KEY_BYTES} bytes")]
    KeyTooLarge,
    /// The bytes are not an OpenPGP v4 transferable public key.
    #[error("not an OpenPGP v4 public key: {0}")]
    Key(&'static str),
}

/// An OpenPGP public key as Autocrypt carries it: checked, with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutocryptKey {
    /// The key's v4 fingerprint, 40 uppercase hex digits.
    pub fingerprint: String,
    /// The transferable public key, base64 without line breaks.
    pub keydata: String,
}

impl AutocryptKey {
    /// Checks binary key bytes and computes their fingerprint.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AutocryptError> {
        if bytes.len() > MAX_AUTOCRYPT_KEY_BYTES {
            return Err(AutocryptError::KeyTooLarge);
        }
        let fingerprint = v4_fingerprint(bytes)?;
        Ok(AutocryptKey {
            fingerprint,
            keydata: STANDARD.encode(bytes),
        })
    }

    /// Checks a key given as base64 (whitespace ignored) or as an ASCII-armored block.
    pub fn parse(text: &str) -> Result<Self, AutocryptError> {
        if text.len() > MAX_AUTOCRYPT_HEADER_CHARS {
            return Err(AutocryptError::TooLong);
        }
        let body = unarmor(text);
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        // Checked before decoding, so an oversize key costs no allocation of its size.
        if compact.len() / 4 * 3 > MAX_AUTOCRYPT_KEY_BYTES + 3 {
            return Err(AutocryptError::KeyTooLarge);
        }
        let bytes = STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| AutocryptError::Base64)?;
        Self::from_bytes(&bytes)
    }
}

/// The body of an ASCII-armored block (between the header lines and the checksum), or the
/// text itself when it is not armored.
fn unarmor(text: &str) -> &str {
    let Some(begin) = text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") else {
        return text;
    };
    let rest = &text[begin..];
    let end = rest
        .find("-----END PGP PUBLIC KEY BLOCK-----")
        .unwrap_or(rest.len());
    let block = &rest[..end];
    // Armor headers end at the first empty line; the body ends before the `=XXXX` checksum.
    let body_start = block
        .find("\n\n")
        .or_else(|| block.find("\r\n\r\n"))
        .map_or(block.len(), |i| i + 2);
    let body = block.get(body_start..).unwrap_or_default();
    match body.rfind("\n=") {
        Some(i) => &body[..i],
        None => body,
    }
}

/// One parsed `Autocrypt:` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutocryptHeader {
    /// The address the key belongs to; must be the message's `From` address to be used.
    pub addr: Address,
    /// The sender's encryption preference.
    pub prefer_encrypt: PreferEncrypt,
    /// The key.
    pub key: AutocryptKey,
}

impl AutocryptHeader {
    /// Parses the value of an `Autocrypt:` header (unfolded or not).
    pub fn parse(value: &str) -> Result<Self, AutocryptError> {
        if value.len() > MAX_AUTOCRYPT_HEADER_CHARS {
            return Err(AutocryptError::TooLong);
        }
        let (mut addr, mut prefer, mut keydata) = (None, None, None);
        for attribute in value.split(';') {
            let attribute = attribute.trim();
            if attribute.is_empty() {
                continue;
            }
            let (name, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let name = name.trim().to_ascii_lowercase();
            let slot = match name.as_str() {
                "addr" => &mut addr,
                "prefer-encrypt" => &mut prefer,
                "keydata" => &mut keydata,
                // Non-critical: ignored, as the spec says.
                _ if name.starts_with('_') => continue,
                _ => return Err(AutocryptError::UnknownAttribute(truncate(&name))),
            };
            if slot.replace(val.trim()).is_some() {
                return Err(AutocryptError::Duplicate(name));
            }
        }
        let addr = addr
            .and_then(|a| Address::parse(a).ok())
            .ok_or(AutocryptError::Addr)?;
        let prefer_encrypt = match prefer {
            Some(p) if p.eq_ignore_ascii_case("mutual") => PreferEncrypt::Mutual,
            _ => PreferEncrypt::NoPreference,
        };
        let key = AutocryptKey::parse(keydata.ok_or(AutocryptError::MissingKeydata)?)?;
        Ok(AutocryptHeader {
            addr,
            prefer_encrypt,
            key,
        })
    }

    /// The header's value, folded so no line passes 78 characters (RFC 5322 §2.1.1): the
    /// attributes on the first line, then the key on continuation lines of 72 characters.
    pub fn folded_value(&self) -> String {
        let mut out = format!("addr={};", self.addr);
        if self.prefer_encrypt == PreferEncrypt::Mutual {
            out.push_str(" prefer-encrypt=mutual;");
        }
        out.push_str(" keydata=");
        for chunk in self.key.keydata.as_bytes().chunks(72) {
            out.push_str("\r\n ");
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(40).collect()
}

/// The v4 fingerprint of a transferable public key, after checking that it is one: a
/// primary public-key packet of version 4, then well-formed packets including a user id.
///
/// The fingerprint is SHA-1 over 0x99, the two-byte length and the public-key packet's body
/// (RFC 4880 §12.2).
fn v4_fingerprint(bytes: &[u8]) -> Result<String, AutocryptError> {
    let mut rest = bytes;
    let mut fingerprint = None;
    let mut user_id = false;
    for n in 0..MAX_PACKETS {
        if rest.is_empty() {
            break;
        }
        let (tag, body, next) = packet(rest)?;
        match (n, tag) {
            (0, 6) => {
                if body.first() != Some(&4) {
                    return Err(AutocryptError::Key("only version 4 keys are supported"));
                }
                let len = u16::try_from(body.len())
                    .map_err(|_| AutocryptError::Key("public-key packet too long"))?;
                let mut hash = Sha1::new();
                hash.update([0x99]);
                hash.update(len.to_be_bytes());
                hash.update(body);
                fingerprint = Some(hex_upper(&hash.finalize()));
            }
            (0, _) => return Err(AutocryptError::Key("does not start with a public key")),
            (_, 5) => return Err(AutocryptError::Key("holds a secret key")),
            (_, 13) => user_id = true,
            _ => {}
        }
        rest = next;
    }
    if !rest.is_empty() {
        return Err(AutocryptError::Key("too many packets"));
    }
    match (fingerprint, user_id) {
        (Some(f), true) => Ok(f),
        (Some(_), false) => Err(AutocryptError::Key("no user id")),
        (None, _) => Err(AutocryptError::Key("empty")),
    }
}

/// One packet: its tag, its body and what follows it. Partial lengths and indeterminate
/// lengths never occur in keys (RFC 4880 §4.2.2.4), so they are refused.
fn packet(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), AutocryptError> {
    let bad = AutocryptError::Key("malformed packet");
    let &first = bytes.first().ok_or(bad.clone())?;
    if first & 0x80 == 0 {
        return Err(bad);
    }
    let byte = |i: usize| bytes.get(i).copied().map(usize::from).ok_or(bad.clone());
    let (tag, header, len): (u8, usize, usize) = if first & 0x40 != 0 {
        let tag = first & 0x3f;
        match byte(1)? {
            l @ 0..=191 => (tag, 2, l),
            l @ 192..=223 => (tag, 3, ((l - 192) << 8) + byte(2)? + 192),
            255 => (
                tag,
                6,
                (byte(2)? << 24) | (byte(3)? << 16) | (byte(4)? << 8) | byte(5)?,
            ),
            _ => return Err(AutocryptError::Key("partial packet length")),
        }
    } else {
        let tag = (first >> 2) & 0x0f;
        match first & 0x03 {
            0 => (tag, 2, byte(1)?),
            1 => (tag, 3, (byte(1)? << 8) | byte(2)?),
            2 => (
                tag,
                5,
                (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?,
            ),
            _ => return Err(AutocryptError::Key("indeterminate packet length")),
        }
    };
    let end = header.checked_add(len).ok_or(bad.clone())?;
    let body = bytes.get(header..end).ok_or(bad)?;
    Ok((tag, body, &bytes[end..]))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A user's own Autocrypt setup: the key their outgoing mail announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnAutocrypt {
    /// Their public key.
    pub key: AutocryptKey,
    /// Whether they ask correspondents to encrypt by default.
    pub prefer_encrypt: PreferEncrypt,
}

impl OwnAutocrypt {
    /// The header their mail from `addr` carries.
    pub fn header(&self, addr: &Address) -> AutocryptHeader {
        AutocryptHeader {
            addr: addr.clone(),
            prefer_encrypt: self.prefer_encrypt,
            key: self.key.clone(),
        }
    }
}

/// What Autocrypt taught about a contact's key (the spec's peer state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutocryptPeer {
    /// The key last seen in an `Autocrypt:` header of theirs.
    pub key: AutocryptKey,
    /// Their encryption preference, from that header.
    pub prefer_encrypt: PreferEncrypt,
    /// The newest effective date of any authenticated message of theirs (`last_seen`).
    pub last_seen: DateTime<Utc>,
    /// The effective date of the message the key came from (`autocrypt_timestamp`).
    pub autocrypt_timestamp: DateTime<Utc>,
}

impl AutocryptPeer {
    /// The state after an authenticated message from the peer, dated `effective` (its
    /// `Date`, but never later than its arrival), carrying `header` or none. Messages older
    /// than the key's message change nothing, so mail delivered out of order cannot bring
    /// an old key back. `None` stays `None` until a header is seen.
    pub fn updated(
        peer: Option<&AutocryptPeer>,
        header: Option<&AutocryptHeader>,
        effective: DateTime<Utc>,
    ) -> Option<AutocryptPeer> {
        match (peer, header) {
            (Some(p), _) if effective <= p.autocrypt_timestamp => Some(p.clone()),
            (_, Some(h)) => Some(AutocryptPeer {
                key: h.key.clone(),
                prefer_encrypt: h.prefer_encrypt,
                last_seen: peer.map_or(effective, |p| p.last_seen.max(effective)),
                autocrypt_timestamp: effective,
            }),
            (Some(p), None) => Some(AutocryptPeer {
                last_seen: p.last_seen.max(effective),
                ..p.clone()
            }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const BOB_KEY: &str = include_str!("../testdata/bob-example-net.key.b64");
    const BOB_FINGERPRINT: &str = "A08C283EDF73A42648815C1A7E2EC29FB033B66F";

    fn folded(addr: &str, prefer: &str, key: &str) -> String {
        let lines: Vec<String> = key
            .trim()
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!("addr={addr};{prefer} keydata=\r\n {}", lines.join("\r\n "))
    }

    #[test]
    fn a_gpg_key_gets_the_fingerprint_gpg_gives_it() {
        let h = AutocryptHeader::parse(&folded(
            "Bob@Example.NET",
            " prefer-encrypt=mutual;",
            BOB_KEY,
        ))
        .expect("valid header");
        assert_eq!(h.addr.as_str(), "bob@example.net");
        assert_eq!(h.prefer_encrypt, PreferEncrypt::Mutual);
        assert_eq!(h.key.fingerprint, BOB_FINGERPRINT);
        assert_eq!(h.key.keydata, BOB_KEY.trim());
    }

    #[test]
    fn missing_or_unknown_prefer_encrypt_is_no_preference() {
        for prefer in [
            "",
            " prefer-encrypt=nopreference;",
            " prefer-encrypt=always;",
        ] {
            let h = AutocryptHeader::parse(&folded("bob@example.net", prefer, BOB_KEY))
                .expect("valid header");
            assert_eq!(h.prefer_encrypt, PreferEncrypt::NoPreference, "{prefer:?}");
        }
    }

    #[test]
    fn non_critical_attributes_are_ignored_and_critical_ones_void_the_header() {
        let ok = folded("bob@example.net", " _comment=hello;", BOB_KEY);
        assert!(AutocryptHeader::parse(&ok).is_ok());
        let bad = folded("bob@example.net", " type=2;", BOB_KEY);
        assert_eq!(
            AutocryptHeader::parse(&bad),
            Err(AutocryptError::UnknownAttribute("type".into()))
        );
        let twice = folded("bob@example.net; addr=eve@example.org", "", BOB_KEY);
        assert_eq!(
            AutocryptHeader::parse(&twice),
            Err(AutocryptError::Duplicate("addr".into()))
        );
    }

    #[test]
    fn broken_keys_are_refused() {
        let key = STANDARD.decode(BOB_KEY.trim()).expect("fixture");
        assert_eq!(
            AutocryptHeader::parse("addr=bob@example.net"),
            Err(AutocryptError::MissingKeydata)
        );
        assert_eq!(
            AutocryptHeader::parse("keydata=AAAA"),
            Err(AutocryptError::Addr)
        );
        assert_eq!(
            AutocryptKey::parse("not base64!"),
            Err(AutocryptError::Base64)
        );
        // Cut anywhere inside a packet, the key no longer parses.
        for cut in [1, 2, 10, key.len() - 1] {
            assert!(AutocryptKey::from_bytes(&key[..cut]).is_err(), "{cut}");
        }
        // A user-id-less key (only its first packet) is not a transferable public key.
        let (_, body, _) = packet(&key).expect("first packet");
        let primary = &key[..key.len() - packet(&key).expect("packet").2.len()];
        assert_eq!(body.first(), Some(&4));
        assert_eq!(
            AutocryptKey::from_bytes(primary),
            Err(AutocryptError::Key("no user id"))
        );
        // A secret-key packet first is refused.
        let mut secret = key.clone();
        secret[0] = 0xc5;
        assert!(AutocryptKey::from_bytes(&secret).is_err());
    }

    #[test]
    fn oversize_keys_are_refused_before_decoding() {
        let huge = "A".repeat(MAX_AUTOCRYPT_KEY_BYTES * 4 / 3 + 100);
        assert_eq!(AutocryptKey::parse(&huge), Err(AutocryptError::KeyTooLarge));
        let header = format!("addr=bob@example.net; keydata={huge}");
        assert!(AutocryptHeader::parse(&header).is_err());
        let endless = "A".repeat(MAX_AUTOCRYPT_HEADER_CHARS + 1);
        assert_eq!(
            AutocryptHeader::parse(&endless),
            Err(AutocryptError::TooLong)
        );
        assert_eq!(
            AutocryptKey::from_bytes(&vec![0x99; MAX_AUTOCRYPT_KEY_BYTES + 1]),
            Err(AutocryptError::KeyTooLarge)
        );
    }

    #[test]
    fn armored_keys_are_read() {
        let armored = format!(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n{}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n",
            BOB_KEY.trim()
        );
        let key = AutocryptKey::parse(&armored).expect("armored");
        assert_eq!(key.fingerprint, BOB_FINGERPRINT);
    }

    #[test]
    fn folded_value_parses_back_and_keeps_lines_short() {
        let h = AutocryptHeader::parse(&folded(
            "bob@example.net",
            " prefer-encrypt=mutual;",
            BOB_KEY,
        ))
        .expect("valid");
        let value = h.folded_value();
        for line in format!("Autocrypt: {value}").split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        assert_eq!(AutocryptHeader::parse(&value), Ok(h));
    }

    #[test]
    fn peer_state_follows_the_newest_effective_date() {
        let h = AutocryptHeader::parse(&folded("bob@example.net", "", BOB_KEY)).expect("valid");
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, d)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .expect("date")
                .and_utc()
        };
        assert_eq!(AutocryptPeer::updated(None, None, day(1)), None);
        let peer = AutocryptPeer::updated(None, Some(&h), day(10)).expect("learnt");
        assert_eq!(
            (peer.last_seen, peer.autocrypt_timestamp),
            (day(10), day(10))
        );
        // Older mail, with or without a header, changes nothing.
        let mutual = AutocryptHeader {
            prefer_encrypt: PreferEncrypt::Mutual,
            ..h.clone()
        };
        assert_eq!(
            AutocryptPeer::updated(Some(&peer), Some(&mutual), day(5)),
            Some(peer.clone())
        );
        assert_eq!(
            AutocryptPeer::updated(Some(&peer), None, day(5)),
            Some(peer.clone())
        );
        // Newer mail without a header only moves last_seen.
        let seen = AutocryptPeer::updated(Some(&peer), None, day(12)).expect("kept");
        assert_eq!(
            (seen.last_seen, seen.autocrypt_timestamp),
            (day(12), day(10))
        );
        // A newer header replaces the key state.
        let newer = AutocryptPeer::updated(Some(&seen), Some(&mutual), day(14)).expect("new");
        assert_eq!(newer.prefer_encrypt, PreferEncrypt::Mutual);
        assert_eq!(newer.autocrypt_timestamp, day(14));
    }
}
