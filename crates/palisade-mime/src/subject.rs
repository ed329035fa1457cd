//! Subject normalization, the fallback key for threading when reference headers are missing.

/// Reply and forward markers in the languages our users' correspondents most often write.
///
/// Only matched when followed by `:` (optionally after `.` and a `[n]`/`(n)` counter), so a
/// subject that merely starts with one of these words is left alone.
const PREFIXES: &[&str] = &[
    "re", "fwd", "fw", "aw", "wg", "sv", "vs", "réf", "ref", "tr", "rif", "antw", "odp",
];

/// Lowercased subject without Re:/Fwd:/Fw:/AW:/SV:/Réf. prefixes (repeated, with [n] counters like "Re[2]:"), without leading mailing-list tags like "[list-name]", whitespace collapsed.
pub fn normalize_subject(subject: &str) -> String {
    let lowered = subject.to_lowercase();
    let mut rest = lowered.trim();
    loop {
        let before = rest.len();
        rest = strip_list_tag(rest).trim_start();
        rest = strip_prefix_marker(rest).trim_start();
        if rest.len() == before {
            break;
        }
    }
    let mut rest = rest.trim_end();
    // Some clients append "(fwd)" instead of prefixing; RFC 5256 strips it too.
    while let Some(stripped) = rest.strip_suffix("(fwd)") {
        rest = stripped.trim_end();
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Strips one leading `[tag]`; an unclosed `[` is part of the subject, not a tag.
fn strip_list_tag(s: &str) -> &str {
    let Some(inner) = s.strip_prefix('[') else {
        return s;
    };
    match inner.find(']') {
        Some(end) if !inner[..end].contains('[') => &inner[end + 1..],
        _ => s,
    }
}

/// Strips one leading reply/forward marker such as `re:`, `re[2]:`, `réf. :` or `aw：`.
fn strip_prefix_marker(s: &str) -> &str {
    let word_end = s
        .char_indices()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(s.len(), |(i, _)| i);
    if !PREFIXES.contains(&&s[..word_end]) {
        return s;
    }
    let mut rest = &s[word_end..];
    rest = rest.strip_prefix('.').unwrap_or(rest);
    rest = strip_counter(rest.trim_start());
    let rest = rest.trim_start();
    // The full-width colon is what CJK mail clients write.
    rest.strip_prefix(':')
        .or_else(|| rest.strip_prefix('：'))
        .unwrap_or(s)
}

/// Strips a reply counter like `[2]` or `(3)`.
fn strip_counter(s: &str) -> &str {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = s.strip_prefix(open)
            && let Some(end) = inner.find(close)
            && inner[..end].trim().chars().all(|c| c.is_ascii_digit())
        {
            return &inner[end + 1..];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::normalize_subject as n;

    #[test]
    fn strips_reply_and_forward_prefixes() {
        assert_eq!(n("Re: Hello"), "hello");
        assert_eq!(n("RE: re: Fwd: FW: Hello"), "hello");
        assert_eq!(n("AW: SV: Hello"), "hello");
        assert_eq!(n("Réf. : Bonjour"), "bonjour");
        assert_eq!(n("Re[2]: Hello"), "hello");
        assert_eq!(n("Re [3] : Hello"), "hello");
        assert_eq!(n("Re(4): Hello"), "hello");
        assert_eq!(n("回复：Re：你好"), "回复：re：你好");
        assert_eq!(n("Re：你好"), "你好");
    }

    #[test]
    fn strips_list_tags_anywhere_in_the_prefix_chain() {
        assert_eq!(n("[list-name] Hello"), "hello");
        assert_eq!(n("Re: [list-name] Re: Hello"), "hello");
        assert_eq!(n("[a] [b] Fwd: [c] Hello"), "hello");
        assert_eq!(n("Hello (fwd)"), "hello");
    }

    #[test]
    fn collapses_whitespace_and_lowercases() {
        assert_eq!(n("  Re:   Hello \t  World\r\n "), "hello world");
        assert_eq!(n("ÉTÉ Ärger"), "été ärger");
    }

    #[test]
    fn leaves_lookalikes_alone() {
        assert_eq!(n("Rebate offer"), "rebate offer");
        assert_eq!(n("Re Hello"), "re hello");
        assert_eq!(n("Fwd Hello"), "fwd hello");
        assert_eq!(n("[unclosed tag"), "[unclosed tag");
        assert_eq!(n("Hello [not a tag]"), "hello [not a tag]");
        assert_eq!(n("Re[x]: Hello"), "re[x]: hello");
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(n(""), "");
        assert_eq!(n("Re:"), "");
        assert_eq!(n("[list]"), "");
        assert_eq!(n("   "), "");
        assert_eq!(n("["), "[");
        assert_eq!(n("Re: Re: Re: Re: Re: Re: x"), "x");
    }
}
