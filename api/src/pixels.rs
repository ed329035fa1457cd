//! Which images a message shows so small or so hidden that no reader sees them: the classic
//! open-tracking pixel. The HTML is tokenized once (html5ever's tokenizer, the parser ammonia
//! builds on) and each `<img>` with a size of at most 3 pixels, a `hidden` attribute or a
//! style that hides it gives its `src`; a blocked image with that URL is a tracker.

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer,
};
use std::cell::RefCell;
use std::collections::HashSet;

/// Images looked at per message; past it, further images are not checked.
const MAX_IMAGES: usize = 10_000;
/// Largest width or height that still makes a pixel.
const PIXEL: f64 = 3.0;

/// The `src` of every image in `html` that is hidden or at most 3×3 pixels.
pub(crate) fn invisible_images(html: &str) -> HashSet<String> {
    let sink = ImageSink::default();
    let tokenizer = Tokenizer::new(sink, Default::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.found.into_inner()
}

#[derive(Default)]
struct ImageSink {
    found: RefCell<HashSet<String>>,
    seen: RefCell<usize>,
}

impl TokenSink for ImageSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        // What the tree builder would read as text must not be taken for images.
        match &*tag.name {
            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "title" | "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
            "img" => {}
            _ => return TokenSinkResult::Continue,
        }
        let mut seen = self.seen.borrow_mut();
        if *seen >= MAX_IMAGES {
            return TokenSinkResult::Continue;
        }
        *seen += 1;
        if let Some(src) = attr(&tag, "src").filter(|_| invisible(&tag)) {
            self.found.borrow_mut().insert(src.to_string());
        }
        TokenSinkResult::Continue
    }
}

fn attr<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

/// Whether the image is hidden or sized to a pixel by its attributes or inline style.
fn invisible(tag: &Tag) -> bool {
    let tiny = |v: Option<&str>| v.and_then(leading_number).is_some_and(|n| n <= PIXEL);
    if tiny(attr(tag, "width")) || tiny(attr(tag, "height")) || attr(tag, "hidden").is_some() {
        return true;
    }
    let style: String = attr(tag, "style")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    style.split(';').any(|decl| {
        let Some((property, value)) = decl.split_once(':') else {
            return false;
        };
        let value = value.trim_end_matches("!important");
        match property {
            "display" => value == "none",
            "visibility" => value == "hidden" || value == "collapse",
            "opacity" => leading_number(value).is_some_and(|n| n == 0.0),
            "width" | "height" | "max-width" | "max-height" => {
                let pixels =
                    value.ends_with("px") || value.chars().all(|c| c.is_ascii_digit() || c == '.');
                pixels && leading_number(value).is_some_and(|n| n <= PIXEL)
            }
            _ => false,
        }
    })
}

/// The number a length starts with (`1`, `1px`, `0.5`), as browsers read `width="1px"`.
fn leading_number(v: &str) -> Option<f64> {
    let v = v.trim();
    let end = v
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(v.len(), |(i, _)| i);
    v[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_and_hidden_images_are_found_and_visible_ones_are_not() {
        let html = r#"<p>Hi</p>
            <img src="https://t.example/1" width="1" height="1">
            <img src="https://t.example/2" width="3px">
            <img src="https://t.example/3" style="display: none">
            <img src="https://t.example/4" style="WIDTH:0px;height:0px">
            <img src="https://t.example/5" hidden>
            <img src="https://t.example/6" style="opacity:0">
            <img src="https://t.example/a&amp;b" height=2>
            <img src="https://img.example/logo.png" width="200" height="50">
            <img src="https://img.example/photo.jpg">
            <img src="https://img.example/wide.png" style="width:100%">
            <img src="https://img.example/em.png" style="width:2em">
            <style>.x { } <img src="https://style.example/not-an-image" width=1></style>
            <script>"<img src='https://script.example/x' width=1>"</script>"#;
        let found = invisible_images(html);
        let mut expected: Vec<String> = (1..=6).map(|i| format!("https://t.example/{i}")).collect();
        expected.push("https://t.example/a&b".into());
        let mut got: Vec<String> = found.into_iter().collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn odd_markup_does_not_panic() {
        for html in [
            "<img",
            "<img src=",
            "<img width=.>",
            "<img width=1e9>",
            "\u{0}<img/>",
        ] {
            let _ = invisible_images(html);
        }
        let many = "<img src=x width=1>".repeat(MAX_IMAGES + 10);
        assert_eq!(invisible_images(&many).len(), 1);
    }
}
