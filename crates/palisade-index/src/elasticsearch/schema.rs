//! What the cluster stores: the settings and mapping of a versioned index, and the document
//! each message becomes, analyzed before it is sent.

use palisade_model::{MessageId, UserId};
use serde_json::{Value, json};

use crate::IndexDocument;
use crate::analysis::{TextAnalyzer, analyze};

/// Version of the index's settings and mapping (`index_body`) and of the analyzer
/// (`analysis`); bump it whenever either changes, since documents indexed before no longer
/// match queries analyzed after.
pub const MAPPING_VERSION: u32 = 1;

/// Cluster-side analyzer of subject, body and addresses, which arrive already analyzed as
/// space-separated words; lowercasing again only guards against unanalyzed input.
const WORDS_ANALYZER: &str = "palisade_words";

/// Settings and mapping of a new versioned index (see [`MAPPING_VERSION`]).
pub(super) fn index_body(shards: u32, replicas: u32) -> Value {
    // Hits are sorted by date and never scored, so norms would be dead weight.
    let words = json!({ "type": "text", "analyzer": WORDS_ANALYZER, "norms": false });
    json!({
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
            },
            "analysis": {
                "analyzer": {
                    // Core-server components only, so any Elasticsearch 8 can host the index.
                    WORDS_ANALYZER: {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase"],
                    },
                },
            },
        },
        "mappings": {
            // A typo in a field name must fail loudly, not grow the mapping.
            "dynamic": "strict",
            // Message content is indexed but not kept: the store is the one copy of the mail,
            // hits only need ids and the date, and the analyzed words are no use to anyone.
            "_source": { "excludes": ["from", "to", "subject", "body"] },
            "properties": {
                "user_id": { "type": "keyword" },
                "message_id": { "type": "keyword" },
                "discussion_id": { "type": "keyword", "index": false },
                // Epoch milliseconds, which accepts any date chrono can produce.
                "date": { "type": "date", "format": "epoch_millis" },
                "from": words,
                "to": words,
                "subject": words,
                "body": words,
                "has_attachment": { "type": "boolean" },
                // Longer tags are kept in the document but not searchable, rather than
                // making Lucene reject the whole message for an oversized term.
                "tags": { "type": "keyword", "ignore_above": 8191 },
            },
        },
    })
}

/// `{user}:{message}`: unique per user, so re-indexing replaces instead of duplicating.
pub(super) fn doc_id(user: UserId, message: MessageId) -> String {
    format!("{user}:{message}")
}

/// The document the cluster stores for `doc`: ids and filters as they are, text analyzed.
pub(super) fn source(analyzer: &mut TextAnalyzer, doc: &IndexDocument) -> Value {
    let mut words = |values: &[String]| -> Vec<String> {
        values.iter().map(|v| analyze(analyzer, v)).collect()
    };
    let (from, to) = (words(&doc.from), words(&doc.to));
    json!({
        "user_id": doc.user_id.to_string(),
        "message_id": doc.message_id.to_string(),
        "discussion_id": doc.discussion_id.to_string(),
        "date": doc.date.timestamp_millis(),
        // One value per address, so a phrase cannot span two of them.
        "from": from,
        "to": to,
        "subject": analyze(analyzer, &doc.subject),
        "body": analyze(analyzer, &doc.body),
        "has_attachment": doc.has_attachment,
        "tags": doc.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{MAX_TOKEN_BYTES, analyzer};

    #[test]
    fn text_is_analyzed_like_the_tantivy_backend() {
        let mut a = analyzer();
        assert_eq!(
            analyze(&mut a, "Zoë Ångström <zoe@Example.TEST>"),
            "zoe angstrom zoe example test"
        );
        assert_eq!(analyze(&mut a, &"x".repeat(MAX_TOKEN_BYTES + 1)), "");
        assert_eq!(analyze(&mut a, "--"), "");
    }
}
