//! HTML mail made safe to show: ammonia removes scripts, event handlers, styles and forms, and
//! remote resources (tracking pixels, remote images) are removed unless the reader asks for
//! them, with a list of what was removed so the client can offer to load it. When the reader
//! does, remote images are rewritten to our image proxy, so the sender never sees the
//! reader's address or cookies, and other remote media stay out. Links lose the query
//! parameters that exist only to tell the sender who clicked (`utm_*` and the like).

use crate::types::{BlockedContent, TrackerReason};
use ammonia::{Builder, UrlRelative};
use palisade_remote::TrackerHosts;
use std::borrow::Cow;
use std::collections::HashSet;
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

/// Of those, the attributes that name one image, which the proxy may load (`srcset` is not
/// among them: ammonia keeps none, and a candidate list would need a link per candidate).
const IMAGES: &[(&str, &str)] = &[
    ("img", "src"),
    ("video", "poster"),
    ("td", "background"),
    ("th", "background"),
    ("table", "background"),
    ("body", "background"),
];

/// Turns a remote image URL into the link that loads it through our proxy; `None` drops it.
pub type ProxyLink = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What becomes of a message's remote resources.
#[derive(Clone)]
pub enum RemoteContent {
    /// Removed and listed, so the reader can choose to load them.
    Blocked,
    /// Images load through the proxy; other remote resources (audio, video) stay out.
    Proxied(ProxyLink),
}

fn is_remote(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("http:")
        || u.starts_with("https:")
        || u.starts_with("//")
        || u.starts_with("ftp:")
}

/// Query parameters that only track who clicked; every `utm_` parameter is one too.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "__hssc",
    "__hstc",
    "__hsfp",
    "hsctatracking",
    "mkt_tok",
    "vero_id",
    "vero_conv",
    "oly_anon_id",
    "oly_enc_id",
    "_openstat",
    "wickedid",
    "ss_source",
    "ss_campaign_id",
    "sc_cid",
    "s_cid",
    "trk",
    "trkcampaign",
    "ml_subscriber",
    "ml_subscriber_hash",
];

/// Whether a query parameter's name marks it as a tracker.
fn is_tracking_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// `url` without its tracking query parameters, and how many were removed. The rest of the
/// URL, the other parameters and their order stay byte for byte.
fn without_tracking_params(url: &str) -> (Cow<'_, str>, u32) {
    let Some((base, rest)) = url.split_once('?') else {
        return (Cow::Borrowed(url), 0);
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let mut removed = 0u32;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            let tracking = is_tracking_param(name);
            removed += u32::from(tracking);
            !tracking
        })
        .collect();
    if removed == 0 {
        return (Cow::Borrowed(url), 0);
    }
    let mut out = base.to_string();
    if kept.iter().any(|p| !p.is_empty()) {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    (Cow::Owned(out), removed)
}

/// HTML ready to show, and what was taken out of it.
#[derive(Debug, Default)]
pub struct Sanitized {
    /// The safe HTML.
    pub html: String,
    /// Remote resources removed (none when remote content was allowed).
    pub blocked: Vec<BlockedContent>,
    /// Tracking parameters removed from links.
    pub tracking_params_removed: u32,
}

/// The relative URLs `sanitize` issued itself (proxy links): the only ones kept.
struct IssuedLinks(Arc<Mutex<HashSet<String>>>);

impl<'a> ammonia::UrlRelativeEvaluate<'a> for IssuedLinks {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        let ours = self.0.lock().is_ok_and(|set| set.contains(url));
        ours.then_some(Cow::Borrowed(url))
    }
}

/// Marks the blocked resources that are trackers: images hidden or sized to a pixel in
/// `html`, and anything from a host on the tracker list. A pixel is the stronger reason.
fn mark_trackers(blocked: &mut [BlockedContent], html: &str, trackers: &TrackerHosts) {
    let invisible = if blocked.iter().any(|b| b.kind == "img src") {
        crate::pixels::invisible_images(html)
    } else {
        HashSet::new()
    };
    for b in blocked {
        let category = trackers.category_of_url(&b.url);
        let reason = if b.kind == "img src" && invisible.contains(&b.url) {
            Some(TrackerReason::Pixel)
        } else {
            category.map(|_| TrackerReason::TrackingHost)
        };
        b.tracker = reason.is_some();
        b.reason = reason;
        b.category = category.map(str::to_string);
    }
}

/// Sanitizes `html`; remote resources are blocked and listed (trackers among them marked
/// from `trackers` and the HTML itself), or images proxied.
pub fn sanitize(html: &str, remote: RemoteContent, trackers: &TrackerHosts) -> Sanitized {
    let blocked: Arc<Mutex<Vec<BlockedContent>>> = Arc::default();
    let sink = blocked.clone();
    let params_removed = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let params_sink = params_removed.clone();
    // Proxy links are the only relative URLs that may stay: ammonia checks relative URLs
    // after the filter has rewritten them, and drops any the mail wrote itself.
    let issued: Arc<Mutex<HashSet<String>>> = Arc::default();
    let issue = issued.clone();
    let remote_link = move |url: &str, link: &ProxyLink| -> Option<String> {
        let proxied = link(url)?;
        if let Ok(mut set) = issue.lock() {
            set.insert(proxied.clone());
        }
        Some(proxied)
    };
    let mut builder = Builder::default();
    builder
        .add_url_schemes(["cid"])
        .url_relative(UrlRelative::Custom(Box::new(IssuedLinks(issued))))
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_tag_attributes("td", ["background"])
        .add_tag_attributes("table", ["background"])
        .attribute_filter(move |element, attribute, value| {
            let fetching = FETCHING.contains(&(element, attribute));
            if fetching && is_remote(value) {
                let link = match &remote {
                    RemoteContent::Blocked => {
                        if let Ok(mut list) = sink.lock() {
                            list.push(BlockedContent {
                                kind: format!("{element} {attribute}"),
                                url: value.chars().take(2048).collect(),
                                tracker: false,
                                reason: None,
                                category: None,
                            });
                        }
                        return None;
                    }
                    RemoteContent::Proxied(link) => link,
                };
                if !IMAGES.contains(&(element, attribute)) {
                    return None;
                }
                return remote_link(value, link).map(Cow::Owned);
            }
            if attribute == "href" && matches!(element, "a" | "area") {
                let (url, removed) = without_tracking_params(value);
                params_sink.fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
                return Some(Cow::Owned(url.into_owned()));
            }
            Some(Cow::Borrowed(value))
        });
    let clean = builder.clean(html).to_string();
    drop(builder);
    let mut blocked = match Arc::try_unwrap(blocked) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => shared.lock().map(|l| l.clone()).unwrap_or_default(),
    };
    mark_trackers(&mut blocked, html, trackers);
    Sanitized {
        html: clean,
        blocked,
        tracking_params_removed: params_removed.load(std::sync::atomic::Ordering::Relaxed),
    }
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
        let Sanitized {
            html: clean,
            blocked,
            ..
        } = sanitize(html, RemoteContent::Blocked, &TrackerHosts::default());
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
    fn pixels_and_listed_hosts_are_marked_as_trackers() {
        let html = concat!(
            r#"<img src="https://shop.example/open.gif?u=1" width="1" height="1">"#,
            r#"<img src="https://us1.list-manage.com/track/o.png">"#,
            r#"<img src="https://ad.doubleclick.net/p.gif" style="display:none">"#,
            r#"<img src="https://shop.example/banner.png" width="600">"#,
            r#"<table background="https://stats.list-manage.com/bg.png"><tr><td>x</td></tr></table>"#,
        );
        let trackers = TrackerHosts::parse(
            "list-manage.com customer_interaction\ndoubleclick.net advertising\n",
        );
        let blocked = sanitize(html, RemoteContent::Blocked, &trackers).blocked;
        let marks: Vec<(&str, bool, Option<TrackerReason>, Option<&str>)> = blocked
            .iter()
            .map(|b| (b.url.as_str(), b.tracker, b.reason, b.category.as_deref()))
            .collect();
        assert_eq!(
            marks,
            vec![
                (
                    "https://shop.example/open.gif?u=1",
                    true,
                    Some(TrackerReason::Pixel),
                    None
                ),
                (
                    "https://us1.list-manage.com/track/o.png",
                    true,
                    Some(TrackerReason::TrackingHost),
                    Some("customer_interaction")
                ),
                (
                    "https://ad.doubleclick.net/p.gif",
                    true,
                    Some(TrackerReason::Pixel),
                    Some("advertising")
                ),
                ("https://shop.example/banner.png", false, None, None),
                (
                    "https://stats.list-manage.com/bg.png",
                    true,
                    Some(TrackerReason::TrackingHost),
                    Some("customer_interaction")
                ),
            ]
        );
    }

    /// A proxy link that shows what it was given.
    fn test_proxy() -> RemoteContent {
        RemoteContent::Proxied(Arc::new(|url: &str| {
            (!url.contains("drop")).then(|| format!("/proxy?u={}", url.replace(':', "%3A")))
        }))
    }

    #[test]
    fn loaded_remote_images_go_through_the_proxy_and_other_media_stay_out() {
        let html = concat!(
            r#"<img src="https://img.example/a.png" width="10">"#,
            r#"<img srcset="https://img.example/1x.png 1x, //img.example/2x.png 2x">"#,
            r#"<img src="https://img.example/drop.png">"#,
            r#"<img src="cid:logo@x">"#,
            r#"<table background="http://bg.example/t.png"><tr><td>x</td></tr></table>"#,
            r#"<video src="https://media.example/v.mp4" poster="https://media.example/p.jpg"></video>"#,
        );
        let Sanitized {
            html: clean,
            blocked,
            ..
        } = sanitize(html, test_proxy(), &TrackerHosts::default());
        assert!(blocked.is_empty());
        assert!(
            clean.contains(r#"src="/proxy?u=https%3A//img.example/a.png""#),
            "{clean}"
        );
        assert!(!clean.contains("srcset"), "{clean}");
        assert!(clean.contains(r#"background="/proxy?u=http%3A//bg.example/t.png""#));
        assert!(clean.contains("cid:logo@x"));
        assert!(
            !clean.contains("drop.png"),
            "a URL the proxy refuses is dropped"
        );
        assert!(
            !clean.contains("v.mp4"),
            "remote media is not an image: {clean}"
        );
        assert!(
            !clean.contains("\"https:") && !clean.contains("\"//") && !clean.contains("\"http:"),
            "no remote URL is left for the browser to fetch: {clean}"
        );
    }

    #[test]
    fn tracking_parameters_leave_links_and_nothing_else_does() {
        let html = concat!(
            r#"<a href="https://shop.example/item?id=7&amp;utm_source=news&amp;UTM_Medium=mail&amp;fbclid=x#top">a</a>"#,
            r#"<a href="https://example.test/?utm_campaign=z">b</a>"#,
            r#"<a href="https://example.test/p?q=utm_source&amp;page=2">c</a>"#,
            r#"<img src="https://img.example/a.png?utm_source=kept">"#,
        );
        let out = sanitize(html, test_proxy(), &TrackerHosts::default());
        assert!(
            out.html
                .contains(r#"href="https://shop.example/item?id=7#top""#),
            "{}",
            out.html
        );
        assert!(
            out.html.contains(r#"href="https://example.test/""#),
            "{}",
            out.html
        );
        assert!(
            out.html
                .contains(r#"href="https://example.test/p?q=utm_source&amp;page=2""#)
        );
        assert!(
            out.html.contains("a.png?utm_source=kept"),
            "image URLs keep their parameters: the proxy fetches them as written"
        );
        assert_eq!(out.tracking_params_removed, 4);
        assert_eq!(
            without_tracking_params("https://x.test/a"),
            (Cow::Borrowed("https://x.test/a"), 0)
        );
    }
}
