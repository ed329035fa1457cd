//! The MIME tree as a flat list a reader can walk to reach every part.

use std::collections::HashSet;

use mail_parser::{Message, MimeHeaders, PartType};
use palisade_model::{Attachment, MAX_MIME_PART_FIELD_BYTES, MAX_STRUCTURE_PARTS, MimePart};

use crate::attachments::{content_type, decoded_size};
use crate::headers::file_name;
use crate::tree::Tree;

/// Describes the parts within the depth limit in tree order, at most [`MAX_STRUCTURE_PARTS`].
pub(crate) fn structure(
    message: &Message<'_>,
    tree: &Tree,
    shown: &HashSet<u32>,
    attachments: &[Attachment],
) -> Vec<MimePart> {
    let listed: HashSet<u32> = attachments.iter().map(|a| a.part_index).collect();
    tree.visible
        .iter()
        .zip(&tree.placement)
        .take(MAX_STRUCTURE_PARTS)
        .filter_map(|(&id, place)| {
            let part = message.parts.get(id as usize)?;
            let container = matches!(part.body, PartType::Multipart(_));
            Some(MimePart {
                index: id,
                parent: place.parent,
                depth: u32::try_from(place.depth).unwrap_or(u32::MAX),
                content_type: capped(content_type(part)),
                size: if container { 0 } else { decoded_size(part) },
                disposition: part
                    .content_disposition()
                    .map(|d| d.ctype().trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .map(capped),
                file_name: file_name(&message.raw_message, part).map(capped),
                charset: part
                    .content_type()
                    .and_then(|ct| ct.attribute("charset"))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| capped(c.to_string())),
                shown_inline: shown.contains(&id),
                attachment: listed.contains(&id),
            })
        })
        .collect()
}

/// A field cut to [`MAX_MIME_PART_FIELD_BYTES`] at a character boundary.
fn capped(mut value: String) -> String {
    if value.len() > MAX_MIME_PART_FIELD_BYTES {
        let mut end = MAX_MIME_PART_FIELD_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}
