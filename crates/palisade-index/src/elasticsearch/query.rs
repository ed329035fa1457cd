//! Searches as the cluster runs them: a bool query that always filters on the user first,
//! with user input reaching only query types that cannot name other fields.

use palisade_model::UserId;
use serde_json::{Value, json};

use crate::analysis::{TextAnalyzer, analyze, analyzer};
use crate::limits::{check_nesting, criterion};
use crate::{IndexError, SearchQuery};

/// Free-text syntax users may use (`+`, `|`, `-`, quotes, parentheses): no prefix, fuzzy or
/// slop operators, whose cost grows with the index rather than with the query.
const TEXT_FLAGS: &str = "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE";

/// The filter every request about one user carries, whatever its routing.
pub(super) fn user_filter(user: UserId) -> Value {
    json!({ "term": { "user_id": user.to_string() } })
}

/// Free text with its words analyzed like documents and its operators kept.
///
/// Quotes, parentheses, `+`, `|` and a leading `-` stay simple_query_string syntax; the
/// words `AND`, `OR` and `NOT` of the tantivy backend's syntax become `+`, `|` and `-`; any
/// other character separates words, as it does in documents.
fn free_text(analyzer: &mut TextAnalyzer, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut negate_next = false;
    for chunk in text.split_whitespace() {
        match chunk {
            // Conjunction is the default operator already.
            "AND" => continue,
            "OR" => {
                out.push_str(" |");
                continue;
            }
            "NOT" => {
                negate_next = true;
                continue;
            }
            _ => {}
        }
        out.push(' ');
        if std::mem::take(&mut negate_next) {
            out.push('-');
        }
        let mut word = String::new();
        for c in chunk.chars() {
            if c.is_alphanumeric() {
                word.push(c);
                continue;
            }
            out.push_str(&analyze(analyzer, &word));
            word.clear();
            out.push(if matches!(c, '"' | '+' | '-' | '|' | '(' | ')') {
                c
            } else {
                ' '
            });
        }
        out.push_str(&analyze(analyzer, &word));
    }
    out
}

/// The bool query for a search: the user filter always comes first, each criterion adds a
/// clause; user input only ever reaches query types that cannot name other fields.
pub(super) fn build_query(user: UserId, query: &SearchQuery) -> Result<Value, IndexError> {
    let mut analyzer = analyzer();
    let mut filter = vec![user_filter(user)];
    let mut must = Vec::new();
    if let Some(text) = criterion("text", &query.text)? {
        check_nesting(text)?;
        must.push(json!({ "simple_query_string": {
            "query": free_text(&mut analyzer, text),
            "fields": ["subject", "body", "from", "to"],
            "default_operator": "and",
            "flags": TEXT_FLAGS,
            "analyze_wildcard": false,
            "auto_generate_synonyms_phrase_query": false,
        } }));
    }
    // Words in order for addresses, all words for the subject, as the tantivy backend does;
    // a criterion without any word matches nothing.
    let criteria = [
        ("from", &query.from, "match_phrase"),
        ("to", &query.to, "match_phrase"),
        ("subject", &query.subject, "match"),
    ];
    for (field, value, kind) in criteria {
        let Some(value) = criterion(field, value)? else {
            continue;
        };
        let words = analyze(&mut analyzer, value);
        must.push(if words.is_empty() {
            json!({ "match_none": {} })
        } else if kind == "match" {
            json!({ "match": { field: { "query": words, "operator": "and" } } })
        } else {
            json!({ "match_phrase": { field: { "query": words } } })
        });
    }
    if query.after.is_some() || query.before.is_some() {
        let mut range = json!({ "format": "epoch_millis" });
        if let Some(after) = query.after {
            range["gte"] = json!(after.timestamp_millis());
        }
        if let Some(before) = query.before {
            range["lt"] = json!(before.timestamp_millis());
        }
        filter.push(json!({ "range": { "date": range } }));
    }
    if let Some(has) = query.has_attachment {
        filter.push(json!({ "term": { "has_attachment": has } }));
    }
    if let Some(tag) = criterion("tag", &query.tag)? {
        filter.push(json!({ "term": { "tags": tag } }));
    }
    Ok(json!({ "bool": { "filter": filter, "must": must } }))
}

/// A search for at most `size` hits, newest first, returning only what a hit needs.
pub(super) fn search_body(query: Value, size: usize) -> Value {
    json!({
        "query": query,
        "size": size,
        "track_total_hits": false,
        "_source": ["message_id", "discussion_id", "date"],
        // message_id breaks date ties so pages are stable.
        "sort": [{ "date": "desc" }, { "message_id": "desc" }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_QUERY_CHARS, MAX_QUERY_NESTING};
    use chrono::{DateTime, Utc};

    fn user() -> UserId {
        UserId::new_random()
    }

    #[test]
    fn every_query_filters_on_the_user_first() {
        let u = user();
        let queries = [
            SearchQuery::default(),
            SearchQuery {
                text: Some(format!("user_id:{} OR *", user())),
                from: Some("alice".into()),
                to: Some("bob".into()),
                subject: Some("hi".into()),
                after: Some(DateTime::UNIX_EPOCH),
                before: Some(Utc::now()),
                has_attachment: Some(true),
                tag: Some("work".into()),
            },
        ];
        for q in queries {
            let built = build_query(u, &q).unwrap();
            assert_eq!(
                built.pointer("/bool/filter/0"),
                Some(&json!({ "term": { "user_id": u.to_string() } })),
                "{built}"
            );
            assert!(!built.to_string().contains("\"query_string\""), "{built}");
        }
    }

    #[test]
    fn criteria_are_bounded() {
        let long = SearchQuery {
            tag: Some("a".repeat(MAX_QUERY_CHARS + 1)),
            ..Default::default()
        };
        assert!(matches!(
            build_query(user(), &long),
            Err(IndexError::InvalidQuery(_))
        ));
        let nested = SearchQuery {
            text: Some("(".repeat(MAX_QUERY_NESTING + 1)),
            ..Default::default()
        };
        assert!(matches!(
            build_query(user(), &nested),
            Err(IndexError::InvalidQuery(_))
        ));
        let blank = SearchQuery {
            text: Some("  ".into()),
            ..Default::default()
        };
        let built = build_query(user(), &blank).unwrap();
        assert_eq!(built.pointer("/bool/must"), Some(&json!([])));
    }

    #[test]
    fn free_text_keeps_operators_and_splits_words() {
        let mut a = analyzer();
        let cases = [
            ("Café  CRÈME", " cafe creme"),
            ("zoe@example.test", " zoe example test"),
            ("a OR b", " a | b"),
            ("a AND NOT b", " a -b"),
            ("NOT (x OR y)", " -(x | y)"),
            (
                "\"Quarterly Report\" -draft",
                " \"quarterly report\" -draft",
            ),
            ("user_id:abc*", " user id abc "),
        ];
        for (input, expected) in cases {
            assert_eq!(free_text(&mut a, input), expected, "{input:?}");
        }
    }
}
