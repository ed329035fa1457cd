//! Reading results: a hit from the fields a matching document stored.

use ::tantivy::TantivyDocument;
use ::tantivy::schema::{Field, Value};
use chrono::{DateTime, Utc};

use super::schema::Fields;
use crate::{IndexError, SearchHit};

/// The hit for a stored document whose date (Unix microseconds) came from the sort.
pub(super) fn hit(
    doc: &TantivyDocument,
    fields: &Fields,
    micros: Option<i64>,
) -> Result<SearchHit, IndexError> {
    let text = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .ok_or_else(|| IndexError::Unavailable("stored document is missing a field".into()))
    };
    let micros =
        micros.ok_or_else(|| IndexError::Unavailable("stored document has no date".into()))?;
    SearchHit::from_stored(
        text(fields.message_id)?,
        text(fields.discussion_id)?,
        DateTime::<Utc>::from_timestamp_micros(micros),
    )
}
