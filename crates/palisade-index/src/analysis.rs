//! The one analyzer that turns addresses, subjects and bodies into searchable words.
//!
//! Both backends use it: tantivy registers it for its text fields, and the Elasticsearch
//! backend runs it before documents and queries reach the cluster. A query therefore finds
//! the same messages on either backend. Changing it changes what is already indexed: bump
//! [`crate::elasticsearch::MAPPING_VERSION`] and rebuild the tantivy index when it does.

use ::tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer};

/// The analyzer's type, named here so that backends need not name tantivy for it.
pub(crate) use ::tantivy::tokenizer::TextAnalyzer;

/// Tokens of this many bytes or more are dropped (base64 blobs, long URLs): tantivy's
/// `RemoveLongFilter` keeps only shorter ones.
pub(crate) const MAX_TOKEN_BYTES: usize = 64;

/// Words are runs of alphanumerics, lowercased and folded to ASCII, and over-long ones
/// dropped; `Zoë <zoe@Example.TEST>` becomes `zoe zoe example test`, so any part of an
/// address matches.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// `text`'s words, in order.
pub(crate) fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// `text`'s words separated by single spaces: a form any whitespace tokenizer splits back
/// into exactly these words.
pub(crate) fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&stream.token().text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzed(text: &str) -> Vec<String> {
        words(&mut analyzer(), text)
    }

    #[test]
    fn addresses_split_into_name_local_part_and_domain_labels() {
        assert_eq!(
            analyzed("Alice Martin <alice.martin+news@mail.Example.TEST>"),
            [
                "alice", "martin", "alice", "martin", "news", "mail", "example", "test"
            ]
        );
        assert_eq!(analyzed("bob@example.org"), ["bob", "example", "org"]);
    }

    #[test]
    fn case_is_folded() {
        assert_eq!(analyzed("HeLLo WORLD"), ["hello", "world"]);
        assert_eq!(analyzed("ПРИВЕТ Straße"), ["привет", "strasse"]);
    }

    #[test]
    fn latin_accents_fold_to_ascii_and_other_scripts_stay_words() {
        assert_eq!(
            analyzed("Zoë Ångström, naïve résumé, Café CRÈME"),
            ["zoe", "angstrom", "naive", "resume", "cafe", "creme"]
        );
        assert_eq!(analyzed("日本語 テスト"), ["日本語", "テスト"]);
        // ASCII folding knows only Latin letters: Greek is lowercased but keeps its accent.
        assert_eq!(analyzed("ΕΛΛΗΝΙΚΆ"), ["ελληνικά"]);
    }

    #[test]
    fn punctuation_is_no_word_and_long_tokens_are_dropped() {
        assert!(analyzed("-- ... <> @").is_empty());
        assert!(analyzed("").is_empty());
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(analyzed(&format!("keep {long} this")), ["keep", "this"]);
        assert!(analyzed(&"y".repeat(MAX_TOKEN_BYTES)).is_empty());
        assert_eq!(analyzed(&"z".repeat(MAX_TOKEN_BYTES - 1)).len(), 1);
    }

    #[test]
    fn analyze_joins_the_same_words() {
        let mut a = analyzer();
        let text = "Zoë Ångström <zoe@Example.TEST>";
        assert_eq!(analyze(&mut a, text), words(&mut a, text).join(" "));
        assert_eq!(analyze(&mut a, "--"), "");
    }
}
