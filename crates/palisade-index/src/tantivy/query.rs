//! Searches as tantivy runs them: a boolean query whose first clause is always the user
//! scope, with free text parsed leniently and the other criteria analyzed like documents.

use std::ops::Bound;

use ::tantivy::Term;
use ::tantivy::query::{
    BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, QueryParser, RangeQuery, TermQuery,
};
use ::tantivy::schema::{Field, IndexRecordOption};
use chrono::{DateTime, Utc};
use palisade_model::{MessageId, UserId};

use super::Inner;
use crate::analysis;
use crate::limits::{check_nesting, criterion};
use crate::{IndexError, SearchQuery};

impl Inner {
    /// Matches every document of `user`, and only those.
    pub(super) fn user_query(&self, user: UserId) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(self.fields.user_id, &user.to_string()),
            IndexRecordOption::Basic,
        ))
    }

    /// Matches one user's message, and only it: the same message id may be another user's too.
    pub(super) fn message_query(&self, user: UserId, message: MessageId) -> Box<dyn Query> {
        let id = Box::new(TermQuery::new(
            Term::from_field_text(self.fields.message_id, &message.to_string()),
            IndexRecordOption::Basic,
        ));
        Box::new(BooleanQuery::intersection(vec![id, self.user_query(user)]))
    }

    /// The user scope is always the first Must clause; every criterion adds another.
    pub(super) fn build_query(
        &self,
        user: UserId,
        query: &SearchQuery,
    ) -> Result<BooleanQuery, IndexError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.user_query(user))];
        if let Some(text) = criterion("text", &query.text)? {
            check_nesting(text)?;
            let mut parser =
                QueryParser::for_index(&self.index, vec![f.subject, f.body, f.from, f.to]);
            parser.set_conjunction_by_default();
            let (parsed, errors) = parser.parse_query_lenient(text);
            if !errors.is_empty() {
                tracing::debug!(
                    errors = errors.len(),
                    "lenient query parsing skipped parts of a query"
                );
            }
            clauses.push((Occur::Must, parsed));
        }
        if let Some(from) = criterion("from", &query.from)? {
            clauses.push((Occur::Must, phrase(f.from, from)));
        }
        if let Some(to) = criterion("to", &query.to)? {
            clauses.push((Occur::Must, phrase(f.to, to)));
        }
        if let Some(subject) = criterion("subject", &query.subject)? {
            clauses.push((Occur::Must, all_words(f.subject, subject)));
        }
        if query.after.is_some() || query.before.is_some() {
            let bound = |d: Option<DateTime<Utc>>, inclusive: bool| match d {
                None => Bound::Unbounded,
                Some(d) => {
                    let term = Term::from_field_i64(f.date, d.timestamp_micros());
                    if inclusive {
                        Bound::Included(term)
                    } else {
                        Bound::Excluded(term)
                    }
                }
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(query.after, true),
                    bound(query.before, false),
                )),
            ));
        }
        if let Some(has) = query.has_attachment {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_bool(f.has_attachment, has),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(tag) = criterion("tag", &query.tag)? {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tags, tag),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        Ok(BooleanQuery::new(clauses))
    }
}

/// `text`'s words as terms of `field`, analyzed as documents are.
fn tokens(field: Field, text: &str) -> Vec<Term> {
    analysis::words(&mut analysis::analyzer(), text)
        .iter()
        .map(|word| Term::from_field_text(field, word))
        .collect()
}

/// Words in order (a phrase); a criterion without any word matches nothing.
fn phrase(field: Field, text: &str) -> Box<dyn Query> {
    let mut terms = tokens(field, text);
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::Basic)),
        _ => Box::new(PhraseQuery::new(terms)),
    }
}

/// All words, in any order; a criterion without any word matches nothing.
fn all_words(field: Field, text: &str) -> Box<dyn Query> {
    let terms = tokens(field, text);
    if terms.is_empty() {
        return Box::new(EmptyQuery);
    }
    Box::new(BooleanQuery::new(
        terms
            .into_iter()
            .map(|t| {
                (
                    Occur::Must,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_QUERY_NESTING;

    #[test]
    fn nesting_is_bounded() {
        assert!(check_nesting("((a) OR (b))").is_ok());
        assert!(matches!(
            check_nesting(&"(".repeat(MAX_QUERY_NESTING + 1)),
            Err(IndexError::InvalidQuery(_))
        ));
    }
}
