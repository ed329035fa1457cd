//! The OpenAPI document as served, and the routing facts derived from it.
//!
//! poem-openapi writes the document from the handlers' types. Three things it cannot state are
//! added here, from the document itself so they cannot drift: the 415 an operation with a body
//! answers to a body of another type, that an upload refuses parts it does not name
//! (`additionalProperties: false`, which its `deny_unknown_fields` enforces but does not
//! document), and the `Allow` header of a 405 (RFC 9110 §15.5.6), which lists the methods the
//! document declares for the path.

use poem::http::HeaderValue;
use serde_json::{Value, json};

/// The methods an OpenAPI path item may declare, in the order `Allow` lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document to serve: `spec` (poem-openapi's) with a 415 response on every operation
/// that takes a body (JSON, or `multipart/form-data` for uploads), and uploads closed to
/// parts they do not name. The 415 has the error shape of the operation's 400.
pub fn document(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        // Not reachable with poem-openapi's output; serving it unchanged beats serving nothing.
        return spec.to_string();
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                let Some(op) = item.get_mut(method) else {
                    continue;
                };
                if op.get("requestBody").is_none() {
                    continue;
                }
                let content = op
                    .pointer("/responses/400/content")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let form = op.pointer_mut("/requestBody/content/multipart~1form-data/schema");
                if let Some(schema) = form.and_then(Value::as_object_mut) {
                    schema.insert("additionalProperties".into(), Value::Bool(false));
                }
                let description = if op
                    .pointer("/requestBody/content/multipart~1form-data")
                    .is_some()
                {
                    "The body is not sent as `multipart/form-data` (`Content-Type` missing or of another type)."
                } else {
                    "The body is not sent as JSON (`Content-Type` missing or of another type)."
                };
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    responses.entry("415").or_insert_with(|| {
                        json!({
                            "description": description,
                            "content": content,
                        })
                    });
                }
            }
        }
    }
    serde_json::to_string(&doc).unwrap_or_else(|_| spec.to_string())
}

/// For each documented path, the methods it declares: what a 405 lists in `Allow`.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    /// Path templates split into segments (`{id}` matches any one segment), with the header
    /// value and the template itself for each.
    paths: Vec<(Vec<String>, HeaderValue, String)>,
}

impl AllowedMethods {
    /// The methods of every path in `document` (an OpenAPI document as JSON text).
    pub fn from_document(document: &str) -> Self {
        let doc: Value = serde_json::from_str(document).unwrap_or_default();
        let mut paths = Vec::new();
        if let Some(items) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in items {
                let methods: Vec<String> = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
                    paths.push((segments(template), value, template.clone()));
                }
            }
        }
        // Literal segments before parameters, so `/tags/{id}` never shadows a literal path.
        paths.sort_by_key(|(segs, _, _)| segs.iter().filter(|s| is_param(s)).count());
        AllowedMethods { paths }
    }

    /// The `Allow` value for a request path, when a documented path matches it.
    pub fn for_path(&self, path: &str) -> Option<HeaderValue> {
        self.matching(path).map(|(_, value, _)| value.clone())
    }

    /// The documented template a request path matches (`/api/v1/tags/{id}`), so metrics
    /// never carry the ids of a raw path.
    pub fn template_for(&self, path: &str) -> Option<&str> {
        self.matching(path)
            .map(|(_, _, template)| template.as_str())
    }

    fn matching(&self, path: &str) -> Option<&(Vec<String>, HeaderValue, String)> {
        let wanted = segments(path);
        self.paths.iter().find(|(template, _, _)| {
            template.len() == wanted.len()
                && template
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| is_param(t) || t == w)
        })
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"openapi":"3.0.0","paths":{
        "/api/v1/tags":{"get":{"responses":{"200":{}}},"post":{"requestBody":{},"responses":{"400":{"content":{"application/json":{}}}}}},
        "/api/v1/tags/{id}":{"patch":{"requestBody":{},"responses":{}},"delete":{"responses":{}}},
        "/api/v1/drafts/{id}/attachments":{"post":{"requestBody":{"content":{"multipart/form-data":{"schema":{"type":"object"}}}},"responses":{}}},
        "/api/v1/messages/{id}/raw":{"get":{"responses":{}}}
    }}"#;

    #[test]
    fn operations_with_a_body_document_415_with_the_error_shape() {
        let doc: Value = serde_json::from_str(&document(SPEC)).expect("json");
        let post = &doc["paths"]["/api/v1/tags"]["post"]["responses"];
        assert_eq!(post["415"]["content"], json!({"application/json": {}}));
        assert!(doc["paths"]["/api/v1/tags"]["get"]["responses"]["415"].is_null());
        assert!(doc["paths"]["/api/v1/tags/{id}"]["patch"]["responses"]["415"].is_object());
        let upload = &doc["paths"]["/api/v1/drafts/{id}/attachments"]["post"];
        assert!(
            upload["responses"]["415"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("multipart/form-data"))
        );
        assert_eq!(
            upload["requestBody"]["content"]["multipart/form-data"]["schema"]["additionalProperties"],
            json!(false)
        );
    }

    #[test]
    fn allow_lists_the_methods_of_the_matching_path() {
        let allowed = AllowedMethods::from_document(SPEC);
        let allow = |p: &str| {
            allowed
                .for_path(p)
                .map(|v| v.to_str().unwrap_or_default().to_string())
        };
        assert_eq!(allow("/api/v1/tags").as_deref(), Some("GET, POST"));
        assert_eq!(allow("/api/v1/tags/").as_deref(), Some("GET, POST"));
        assert_eq!(allow("/api/v1/tags/abc").as_deref(), Some("DELETE, PATCH"));
        assert_eq!(allow("/api/v1/messages/x/raw").as_deref(), Some("GET"));
        assert_eq!(allow("/api/v1/nothing"), None);
        assert_eq!(
            allowed.template_for("/api/v1/tags/0b7f2c1e"),
            Some("/api/v1/tags/{id}")
        );
        assert_eq!(allowed.template_for("/api/v1/nothing"), None);
    }
}
