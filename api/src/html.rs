//! HTML mail made safe to show: ammonia removes scripts, event handlers, styles and forms, and
//! remote resources (tracking pixels, remote images) are removed unless the reader asks for
//! them, with a list of what was removed so the client can offer to load it.

use crate::types::BlockedContent;
use ammonia::{Builder, UrlRelative};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// Attributes that make the browser fetch a URL as soon as the message is shown.
const FETCHING: &[(&str, &str)] = &[
    ("img", "src"),
    ("img", "srcset"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("source", "src"),
    ("source", "srcset"),
    ("td", "background"),
    ("th", "background"),
    ("table", "background"),
    ("body", "background"),
];

fn is_remote(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("http:")
        || u.starts_with("https:")
        || u.starts_with("//")
        || u.starts_with("ftp:")
}

/// Sanitizes `html`; with `allow_remote` false, every remote resource is dropped and listed.
pub fn sanitize(html: &str, allow_remote: bool) -> (String, Vec<BlockedContent>) {
    let blocked: Arc<Mutex<Vec<BlockedContent>>> = Arc::default();
    let sink = blocked.clone();
    let mut builder = Builder::default();
    builder
        .add_url_schemes(["cid"])
        .url_relative(UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_tag_attributes("td", ["background"])
        .add_tag_attributes("table", ["background"])
        .attribute_filter(move |element, attribute, value| {
            let fetching = FETCHING.contains(&(element, attribute));
            if fetching && !allow_remote && is_remote(value) {
                if let Ok(mut list) = sink.lock() {
                    list.push(BlockedContent {
                        kind: format!("{element} {attribute}"),
                        url: value.chars().take(2048).collect(),
                    });
                }
                return None;
            }
            Some(Cow::Borrowed(value))
        });
    let clean = builder.clean(html).to_string();
    drop(builder);
    let blocked = match Arc::try_unwrap(blocked) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => shared.lock().map(|l| l.clone()).unwrap_or_default(),
    };
    (clean, blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_images_and_pixels_are_blocked_and_listed() {
        let html = r#"<p onclick="x()">Hi<script>alert(1)</script></p>
            <img src="https://tracker.example/p.gif?u=1" width=1>
            <img src="cid:logo@x"><a href="https://example.test/">link</a>
            <style>body{background:url(https://t.example/bg)}</style>"#;
        let (clean, blocked) = sanitize(html, false);
        assert!(!clean.contains("script") && !clean.contains("onclick"));
        assert!(!clean.contains("tracker.example") && !clean.contains("t.example/bg"));
        assert!(clean.contains("cid:logo@x"), "inline parts stay: {clean}");
        assert!(clean.contains(r#"href="https://example.test/""#));
        assert!(clean.contains("noopener"));
        assert_eq!(blocked.len(), 1);
        assert_eq!(blocked[0].kind, "img src");
        assert_eq!(blocked[0].url, "https://tracker.example/p.gif?u=1");
    }

    #[test]
    fn remote_content_stays_when_asked_for() {
        let (clean, blocked) = sanitize(r#"<img src="https://img.example/a.png">"#, true);
        assert!(clean.contains("https://img.example/a.png"));
        assert!(blocked.is_empty());
    }
}
