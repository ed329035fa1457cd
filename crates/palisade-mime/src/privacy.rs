//! What headers and structure reveal about how private a message was.
//!
//! Only headers our own hosts wrote are believed (see [`TrustBoundary`]); the sender could
//! have written any of the others, and they are counted in `untrusted_headers` instead.

use mail_parser::{
    Header, HeaderName, HeaderValue, Host, Message, MessageParser, Protocol, Received,
};
use palisade_model::autocrypt::MAX_AUTOCRYPT_HEADER_CHARS;
use palisade_model::{
    Address, AuthResults, AutocryptHeader, HopTls, PrivacyFeatures, SpamVerdict, TrustBoundary,
};
use std::sync::LazyLock;

use crate::crypto;

/// What [`privacy`] read that needs the `From` address to judge: the caller has it.
#[derive(Debug, Default)]
pub(crate) struct SenderEvidence {
    /// Our own MTA's `Authentication-Results`, lowercased, comments removed.
    our_results: Option<String>,
    /// The values of the first two `Autocrypt:` headers (two are enough to know there is
    /// more than one); `None` for one too long to hold a key we would keep.
    autocrypt: Vec<Option<String>>,
}

impl SenderEvidence {
    /// The `From` address if our MTA's results authenticate it: DMARC passed for its
    /// domain, or a DKIM signature passed whose domain is aligned with it.
    pub(crate) fn authenticated(&self, from: &Address) -> Option<String> {
        let results = self.our_results.as_deref()?;
        let domain = from.as_str().rsplit_once('@')?.1;
        results
            .split(';')
            .any(|resinfo| authenticates(resinfo, domain))
            .then(|| from.as_str().to_string())
    }

    /// The one `Autocrypt:` header, parsed, when there is exactly one and its `addr` is
    /// `from`; the spec says to ignore them all otherwise.
    pub(crate) fn autocrypt(&self, from: &Address) -> Option<AutocryptHeader> {
        let [Some(value)] = self.autocrypt.as_slice() else {
            return None;
        };
        AutocryptHeader::parse(value)
            .ok()
            .filter(|h| h.addr == *from)
    }
}

/// Whether one result of an `Authentication-Results` header (`method=result props`)
/// vouches for mail from `domain`.
fn authenticates(resinfo: &str, domain: &str) -> bool {
    let mut words = resinfo.split_whitespace();
    let Some(verdict) = words.next() else {
        return false;
    };
    let property = |name: &str| {
        resinfo
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|v| v.trim_matches('"'))
    };
    match verdict {
        // DMARC judges the From domain itself; when it names it, it must be this one.
        "dmarc=pass" => property("header.from=").is_none_or(|d| d == domain),
        "dkim=pass" => {
            let signer = property("header.d=")
                .or_else(|| property("header.i=").and_then(|i| i.rsplit_once('@').map(|p| p.1)));
            // Relaxed alignment: the signer's domain or a parent of the From domain. A parent
            // needs two labels, so a signature by a bare TLD aligns with nothing.
            signer.is_some_and(|d| {
                d == domain || (d.contains('.') && domain.ends_with(&format!(".{d}")))
            })
        }
        _ => false,
    }
}

/// Fills everything but `mime_depth_exceeded` (from the tree walk), `multiple_from` and
/// `authenticated_sender`, which need the `From` address: the evidence for the last is
/// returned beside.
///
/// `raw` is the top-level message, whose bytes the header offsets point into; `bodies` are
/// the decoded text bodies searched for inline PGP armor.
pub(crate) fn privacy(
    raw: &[u8],
    message: &Message<'_>,
    visible: &[u32],
    bodies: &[&str],
    trust: &TrustBoundary,
) -> (PrivacyFeatures, SenderEvidence) {
    let mut evidence = SenderEvidence::default();
    let headers = message.parts.first().map_or(&[][..], |p| &p.headers[..]);
    let mut features = PrivacyFeatures::default();
    let mut untrusted = 0u32;
    let mut spam_headers = SpamHeaders::default();
    // Received headers are newest first: ours sit on top, down to the hop where the mail
    // entered; everything below was written before we saw the mail.
    let mut within_our_hosts = !trust.internal_relays.is_empty();
    for header in headers {
        match &header.name {
            HeaderName::Received => {
                // Below the first hop that is not ours nothing is believed, so nothing there
                // needs reading; only our own hops are parsed at all.
                let read = within_our_hosts.then(|| {
                    let parsed = parse_received(raw, header);
                    (hop(raw, header, parsed.as_ref()), parsed)
                });
                match read {
                    Some((hop, parsed))
                        if hop.by.as_deref().is_some_and(|by| trust.is_relay_host(by)) =>
                    {
                        within_our_hosts = parsed.is_some_and(|r| from_our_hosts(&r, trust));
                        features.transport.push(hop);
                    }
                    _ => {
                        within_our_hosts = false;
                        untrusted = untrusted.saturating_add(1);
                    }
                }
            }
            HeaderName::DkimSignature => features.dkim_signature = true,
            HeaderName::AuthenticationResults => {
                let value = raw_value(raw, header);
                if !trust.is_own_authserv_id(&value) {
                    untrusted = untrusted.saturating_add(1);
                } else if features.auth_results.is_none() {
                    features.auth_results = Some(auth_results(&value));
                    evidence.our_results = Some(strip_comments(&value.to_ascii_lowercase()));
                }
            }
            HeaderName::ListId if features.list_id.is_none() => {
                features.list_id = list_id(&raw_value(raw, header));
            }
            HeaderName::Other(name) => {
                let name = name.as_ref();
                if name.eq_ignore_ascii_case("autocrypt") {
                    features.autocrypt = true;
                    if evidence.autocrypt.len() < 2 {
                        let size = header.offset_end.saturating_sub(header.offset_start);
                        evidence.autocrypt.push(
                            (size as usize <= MAX_AUTOCRYPT_HEADER_CHARS * 2)
                                .then(|| raw_value(raw, header)),
                        );
                    }
                } else {
                    spam_headers.offer(name, || raw_value(raw, header));
                }
            }
            _ => {}
        }
    }
    // Spam headers carry no host, so they are believed only on mail our relays handled; the
    // border removes incoming ones (the postfix role's header_checks), so what is left there
    // is our filter's.
    if features.transport.is_empty() {
        untrusted = untrusted.saturating_add(spam_headers.count());
    } else {
        features.spam = spam_headers.verdict();
    }
    features.untrusted_headers = untrusted;
    features.crypto = crypto::crypto(raw, message, visible, bodies);
    (features, evidence)
}

/// Whether the client of a hop our relay recorded was itself one of our hosts, so that the
/// next `Received` down was written by us too. A hop with no client at all is a local
/// submission; one named only by its HELO greeting is taken as outside, since the client
/// chose that name.
fn from_our_hosts(r: &Received<'_>, trust: &TrustBoundary) -> bool {
    if let Some(ip) = r.from_ip {
        return trust.is_relay_ip(ip);
    }
    if let Some(iprev) = r.from_iprev.as_deref() {
        return trust.is_relay_host(iprev);
    }
    r.from.is_none() && r.helo.is_none()
}

/// The first `X-Spam-Flag`, `X-Spam-Status` and `X-Spam-Score` (SpamAssassin's and rspamd's
/// names for a verdict).
#[derive(Default)]
struct SpamHeaders {
    flag: Option<String>,
    status: Option<String>,
    score: Option<String>,
}

impl SpamHeaders {
    fn offer(&mut self, name: &str, value: impl FnOnce() -> String) {
        let slot = if name.eq_ignore_ascii_case("x-spam-flag") {
            &mut self.flag
        } else if name.eq_ignore_ascii_case("x-spam-status") {
            &mut self.status
        } else if name.eq_ignore_ascii_case("x-spam-score") {
            &mut self.score
        } else {
            return;
        };
        if slot.is_none() {
            *slot = Some(value());
        }
    }

    fn count(&self) -> u32 {
        [&self.flag, &self.status, &self.score]
            .iter()
            .filter(|v| v.is_some())
            .count() as u32
    }

    fn verdict(&self) -> SpamVerdict {
        spam(
            self.flag.as_deref(),
            self.status.as_deref(),
            self.score.as_deref(),
        )
    }
}

/// The header's value as written, unfolded; parsed forms lose the comments TLS hints live in.
pub(crate) fn raw_value(raw: &[u8], header: &Header<'_>) -> String {
    let bytes = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `Received` field parsed on its own. The message parser keeps `Received` raw: a chain
/// can be long, and only the hops of our own relays are ever read (see [`privacy`]). On its
/// own, a field also cannot be overrun by mail-parser's date parser into the next one.
fn parse_received(raw: &[u8], header: &Header<'_>) -> Option<Received<'static>> {
    static RECEIVED: LazyLock<MessageParser> =
        LazyLock::new(|| MessageParser::new().header_received(HeaderName::Received));
    let field = raw.get(header.offset_field as usize..header.offset_end as usize)?;
    let section = [field, b"\r\n"].concat();
    let parsed = RECEIVED.parse_headers(&section)?;
    let first = parsed
        .parts
        .into_iter()
        .next()?
        .headers
        .into_iter()
        .next()?;
    match first.value {
        HeaderValue::Received(r) => Some(r.into_owned()),
        _ => None,
    }
}

fn hop(raw: &[u8], header: &Header<'_>, parsed: Option<&Received<'_>>) -> HopTls {
    let text = raw_value(raw, header).to_ascii_lowercase();
    let parsed_tls = parsed.is_some_and(|r| {
        r.tls_version.is_some()
            || matches!(
                r.with,
                Some(
                    Protocol::ESMTPS
                        | Protocol::ESMTPSA
                        | Protocol::LMTPS
                        | Protocol::LMTPSA
                        | Protocol::UTF8SMTPS
                        | Protocol::UTF8SMTPSA
                        | Protocol::UTF8LMTPS
                        | Protocol::UTF8LMTPSA
                        | Protocol::HTTPS
                )
            )
    });
    let by = parsed
        .and_then(|r| r.by.as_ref())
        .map(|host| match host {
            Host::Name(name) => name.to_string(),
            Host::IpAddr(ip) => ip.to_string(),
        })
        .or_else(|| word_after(&text, "by"))
        .map(|h| {
            h.trim_matches(|c| c == '(' || c == ')' || c == ';')
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty() && !CLAUSES.contains(&h.as_str()));
    HopTls {
        by,
        tls: parsed_tls || text_names_tls(&text),
    }
}

/// Heuristics for MTAs whose wording mail-parser's tokenizer does not map to a TLS version.
fn text_names_tls(lower: &str) -> bool {
    const TLS_WITH: &[&str] = &[
        "esmtps",
        "esmtpsa",
        "lmtps",
        "lmtpsa",
        "utf8smtps",
        "utf8smtpsa",
        "smtps",
    ];
    word_after(lower, "with").is_some_and(|w| TLS_WITH.contains(&w.as_str()))
        || [
            "using tls",
            "version=tls",
            "tlsv1",
            "(tls1",
            " tls1.",
            "with tls",
        ]
        .iter()
        .any(|needle| lower.contains(needle))
}

/// Received clause keywords; one where a host should be means the host was left empty.
const CLAUSES: &[&str] = &["from", "by", "via", "with", "id", "for"];

/// The whitespace-separated word following the first standalone `keyword`.
///
/// A following clause keyword means the value was left empty (qmail writes `by  with SMTP`).
fn word_after(text: &str, keyword: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case(keyword) {
            return words
                .next()
                .filter(|w| !CLAUSES.iter().any(|c| w.eq_ignore_ascii_case(c)))
                .map(str::to_string);
        }
    }
    None
}

fn auth_results(value: &str) -> AuthResults {
    let text = strip_comments(&value.to_ascii_lowercase());
    AuthResults {
        spf: method_result(&text, "spf"),
        dkim: method_result(&text, "dkim"),
        dmarc: method_result(&text, "dmarc"),
    }
}

/// Removes `(comments)`, which often quote other methods' verdicts in prose.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The result of the first `method=result` whose method name stands alone (not `header.dkim=`).
fn method_result(text: &str, method: &str) -> Option<String> {
    let needle = format!("{method}=");
    let mut from = 0;
    while let Some(pos) = text.get(from..)?.find(&needle) {
        let start = from + pos;
        let standalone = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == ';');
        if standalone {
            let value: String = text[start + needle.len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ';')
                .collect();
            return (!value.is_empty()).then_some(value);
        }
        from = start + needle.len();
    }
    None
}

/// The list identifier between angle brackets; the phrase before it is only a description.
fn list_id(value: &str) -> Option<String> {
    let id = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn spam(flag: Option<&str>, status: Option<&str>, score: Option<&str>) -> SpamVerdict {
    let yes_no = |s: &str| {
        let word = s.split([',', ' ', ';']).next().unwrap_or_default();
        if word.eq_ignore_ascii_case("yes") {
            Some(true)
        } else if word.eq_ignore_ascii_case("no") {
            Some(false)
        } else {
            None
        }
    };
    let status_score = status.and_then(|s| {
        // SpamAssassin 2.x wrote `hits=`, later versions `score=`.
        ["score=", "hits="]
            .iter()
            .find_map(|key| s.to_ascii_lowercase().find(key).map(|p| p + key.len()))
            .and_then(|start| parse_score(&s[start..]))
    });
    SpamVerdict {
        is_spam: flag.and_then(yes_no).or_else(|| status.and_then(yes_no)),
        score: score.and_then(parse_score).or(status_score),
    }
}

/// Parses the leading number of `text`, as in `5.2 required=5.0` or `-1.3 (---)`.
fn parse_score(text: &str) -> Option<f32> {
    let number: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        .collect();
    number.parse::<f32>().ok().filter(|s| s.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_results_ignore_comments_and_property_names() {
        let r = auth_results(
            "mx.example; dkim=PASS (signature header.dkim=fail) header.d=x.example; \
             spf=softfail (spf=pass would be nicer) smtp.mailfrom=a@x.example; dmarc=none",
        );
        assert_eq!(r.dkim.as_deref(), Some("pass"));
        assert_eq!(r.spf.as_deref(), Some("softfail"));
        assert_eq!(r.dmarc.as_deref(), Some("none"));
        assert_eq!(auth_results("mx.example; none"), AuthResults::default());
    }

    #[test]
    fn spam_verdicts() {
        let v = spam(None, Some("Yes, score=5.2 required=5.0 tests=FOO"), None);
        assert_eq!((v.is_spam, v.score), (Some(true), Some(5.2)));
        let v = spam(
            Some("NO"),
            Some("Yes, hits=-1.5 required=5.0"),
            Some("garbage"),
        );
        assert_eq!((v.is_spam, v.score), (Some(false), Some(-1.5)));
        let v = spam(None, None, Some("3.1 (+++)"));
        assert_eq!((v.is_spam, v.score), (None, Some(3.1)));
        assert_eq!(
            spam(None, Some("maybe"), Some("NaN")),
            SpamVerdict::default()
        );
    }

    #[test]
    fn list_ids() {
        assert_eq!(
            list_id("Friends of Rust <rust.lists.example>").as_deref(),
            Some("rust.lists.example")
        );
        assert_eq!(list_id("bare.example").as_deref(), Some("bare.example"));
        assert_eq!(list_id(" <> "), None);
    }
}
