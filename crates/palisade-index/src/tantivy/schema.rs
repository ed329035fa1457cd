//! What the index stores: the fields of a document, the analyzers they are indexed with, and
//! the document each message becomes.

use ::tantivy::TantivyDocument;
use ::tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use crate::IndexDocument;
use crate::IndexError;

/// Name the on-disk schema gives the analyzer of subject and body ([`crate::analysis`]).
pub(super) const TEXT_TOKENIZER: &str = "palisade_text";
/// Name the on-disk schema gives the analyzer of addresses: the same one, so `alice` and
/// `example` match `alice@example.test`.
pub(super) const ADDRESS_TOKENIZER: &str = "palisade_address";

/// Handles of the schema's fields, looked up once when the index is opened.
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) user_id: Field,
    pub(super) message_id: Field,
    pub(super) discussion_id: Field,
    /// Unix microseconds.
    pub(super) date: Field,
    pub(super) from: Field,
    pub(super) to: Field,
    pub(super) subject: Field,
    pub(super) body: Field,
    pub(super) has_attachment: Field,
    pub(super) tags: Field,
}

impl Fields {
    /// Looks up every field; fails on an index whose schema lacks one.
    pub(super) fn from_schema(schema: &Schema) -> Result<Self, IndexError> {
        let get = |name: &str| {
            schema
                .get_field(name)
                .map_err(|e| IndexError::Unavailable(format!("index schema: {e}")))
        };
        Ok(Fields {
            user_id: get("user_id")?,
            message_id: get("message_id")?,
            discussion_id: get("discussion_id")?,
            date: get("date")?,
            from: get("from")?,
            to: get("to")?,
            subject: get("subject")?,
            body: get("body")?,
            has_attachment: get("has_attachment")?,
            tags: get("tags")?,
        })
    }
}

/// The schema of a new index, and the one an existing index must have.
pub(super) fn build_schema() -> Schema {
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let mut builder = Schema::builder();
    // `"{user}/{message}"`, by which documents written before 2026-12-03 were replaced and
    // deleted. No longer written (see `write::Inner::delete`); it stays in the schema so
    // that indexes written before still open.
    builder.add_text_field("key", STRING);
    builder.add_text_field("user_id", STRING | STORED);
    builder.add_text_field("message_id", STRING | STORED);
    builder.add_text_field("discussion_id", STORED);
    builder.add_i64_field("date", FAST | INDEXED | STORED);
    builder.add_text_field("from", text(ADDRESS_TOKENIZER));
    builder.add_text_field("to", text(ADDRESS_TOKENIZER));
    builder.add_text_field("subject", text(TEXT_TOKENIZER));
    builder.add_text_field("body", text(TEXT_TOKENIZER));
    builder.add_bool_field("has_attachment", INDEXED);
    builder.add_text_field("tags", STRING);
    builder.build()
}

/// The document the index stores for `doc`; tantivy analyzes its text fields on the way in.
pub(super) fn to_document(fields: &Fields, doc: &IndexDocument) -> TantivyDocument {
    let mut out = TantivyDocument::default();
    out.add_text(fields.user_id, doc.user_id.to_string());
    out.add_text(fields.message_id, doc.message_id.to_string());
    out.add_text(fields.discussion_id, doc.discussion_id.to_string());
    out.add_i64(fields.date, doc.date.timestamp_micros());
    for from in &doc.from {
        out.add_text(fields.from, from);
    }
    for to in &doc.to {
        out.add_text(fields.to, to);
    }
    out.add_text(fields.subject, &doc.subject);
    out.add_text(fields.body, &doc.body);
    out.add_bool(fields.has_attachment, doc.has_attachment);
    for tag in &doc.tags {
        out.add_text(fields.tags, tag);
    }
    out
}
