//! Walks the MIME tree once to learn which parts lie within the depth limit.

use mail_parser::{Message, PartType};

/// The outcome of walking a message's MIME tree.
pub(crate) struct Tree {
    /// Top-level part ids (not those inside nested messages) within the depth limit, in tree order.
    pub visible: Vec<u32>,
    /// Enclosing multipart and depth of each `visible` part, in the same order.
    pub placement: Vec<Placement>,
    /// Some part, possibly inside a nested message, sits deeper than the limit.
    pub depth_exceeded: bool,
    /// Membership of `visible`, indexed by part id, so lookups stay linear on huge trees.
    shown: Vec<bool>,
}

impl Tree {
    /// Whether a top-level part id lies within the depth limit.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.shown.get(id as usize).copied().unwrap_or(false)
    }
}

/// Where a part sits in the top-level tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    /// Part id of the enclosing multipart, `None` for the root.
    pub parent: Option<u32>,
    /// Nesting depth, root = 0.
    pub depth: usize,
}

/// Walks the tree iteratively: hostile mail can nest thousands of levels, and recursion
/// would hand the attacker our stack.
pub(crate) fn walk(message: &Message<'_>, max_depth: usize) -> Tree {
    let mut visible = Vec::new();
    let mut placement = Vec::new();
    let mut depth_exceeded = false;
    // (message, part id, parent id, depth, belongs to the top-level message)
    let mut stack: Vec<(&Message<'_>, u32, Option<u32>, usize, bool)> = Vec::new();
    if !message.parts.is_empty() {
        stack.push((message, 0, None, 0, true));
    }
    while let Some((msg, id, parent, depth, top)) = stack.pop() {
        if depth > max_depth {
            depth_exceeded = true;
            continue;
        }
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        if top {
            visible.push(id);
            placement.push(Placement { parent, depth });
        }
        match &part.body {
            PartType::Multipart(children) => {
                // mail-parser numbers children after their parent; insisting on it makes
                // a cycle in a malformed tree impossible. Reversed so the stack pops in order.
                for &child in children.iter().rev().filter(|&&c| c > id) {
                    stack.push((msg, child, Some(id), depth + 1, top));
                }
            }
            PartType::Message(nested) if !nested.parts.is_empty() => {
                stack.push((nested, 0, None, depth + 1, false));
            }
            _ => {}
        }
    }
    let mut shown = vec![false; message.parts.len()];
    for &id in &visible {
        if let Some(slot) = shown.get_mut(id as usize) {
            *slot = true;
        }
    }
    Tree {
        visible,
        placement,
        depth_exceeded,
        shown,
    }
}
