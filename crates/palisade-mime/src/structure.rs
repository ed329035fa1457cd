//! The MIME tree as a flat list a reader can walk to reach every part.

use crate::fields;
use std::collections::{HashMap, HashSet};

use mail_parser::{Message, PartType};
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
    // An attachment's type, size and file name were read already: a file name is a parameter
    // parse (RFC 2231, RFC 2047), the costliest field here.
    let listed: HashMap<u32, &Attachment> = attachments.iter().map(|a| (a.part_index, a)).collect();
    tree.visible
        .iter()
        .zip(&tree.placement)
        .take(MAX_STRUCTURE_PARTS)
        .filter_map(|(&id, place)| {
            let part = message.parts.get(id as usize)?;
            let container = matches!(part.body, PartType::Multipart(_));
            let attachment = listed.get(&id).copied();
            let (ctype, size, name) = match attachment {
                Some(a) => (a.content_type.clone(), a.size, a.file_name.clone()),
                None => (
                    content_type(part),
                    if container { 0 } else { decoded_size(part) },
                    file_name(&message.raw_message, part),
                ),
            };
            Some(MimePart {
                index: id,
                parent: place.parent,
                depth: u32::try_from(place.depth).unwrap_or(u32::MAX),
                content_type: capped(ctype),
                size,
                disposition: fields::content_disposition(part)
                    .map(|d| d.ctype().trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .map(capped),
                file_name: name.map(capped),
                charset: fields::charset(part)
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| capped(c.to_string())),
                shown_inline: shown.contains(&id),
                attachment: attachment.is_some(),
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
