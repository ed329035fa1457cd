//! Strict JSON request bodies: the body must have the JSON types its schema states, then pass
//! the schema's rules and the request type's `validator` checks, or the request gets a 400
//! naming the field.
//!
//! poem-openapi's own `Json` coerces: a number or boolean becomes a string (`{"name": false}`
//! made a tag named "false"), and `null` passes for any optional or defaulted field. Neither is
//! what the document says, so a client (or its generated types) could not rely on it.

use crate::error::ApiError;
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;
use std::ops::Deref;
use validator::Validate;

/// A JSON request body of type `T`, checked against `T`'s schema and `validator` rules.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<T> Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        // `application/json`, with or without parameters, or any `+json` type, as `Json` does.
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + Validate> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: Value = serde_json::from_slice(&data)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
        let mut registry = Registry::new();
        T::register(&mut registry);
        check_types(&value, &T::schema_ref(), &registry, "body").map_err(ApiError::invalid)?;
        let parsed = T::parse_from_json(Some(value))
            .map_err(|e| ApiError::invalid(format!("body: {}", e.into_message())))?;
        parsed.validate().map_err(|e| ApiError::validation(&e))?;
        Ok(JsonBody(parsed))
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + Validate);

/// The JSON type's name, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks that `value` has the JSON types `schema` states, all the way down: no `null` where
/// the schema does not allow it, no number or boolean where it wants a string, and every
/// required property present. Constraints on values (lengths, patterns) are left to parsing.
fn check_types(
    value: &Value,
    schema: &MetaSchemaRef,
    registry: &Registry,
    path: &str,
) -> Result<(), String> {
    let schema: &MetaSchema = match schema {
        MetaSchemaRef::Inline(s) => s,
        // A reference the registry lacks would be a bug in the type; parsing still checks it.
        MetaSchemaRef::Reference(name) => match registry.schemas.get(name) {
            Some(s) => s,
            None => return Ok(()),
        },
    };
    for part in &schema.all_of {
        check_types(value, part, registry, path)?;
    }
    if value.is_null() {
        return if schema.nullable || schema.ty.is_empty() {
            Ok(())
        } else {
            Err(format!("{path}: must not be null"))
        };
    }
    let expected = match schema.ty {
        "string" => "a string",
        "boolean" => "a boolean",
        "integer" => "an integer",
        "number" => "a number",
        "array" => "an array",
        "object" => "an object",
        _ => return Ok(()),
    };
    let fits = match (schema.ty, value) {
        ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("number", Value::Number(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !fits {
        return Err(format!(
            "{path}: expected {expected}, found {}",
            kind(value)
        ));
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    check_types(item, item_schema, registry, &format!("{path}[{i}]"))?;
                }
            }
        }
        Value::Object(fields) => {
            for name in &schema.required {
                if !fields.contains_key(*name) {
                    return Err(format!("{path}.{name}: required"));
                }
            }
            for (name, field_schema) in &schema.properties {
                if let Some(field) = fields.get(*name) {
                    check_types(field, field_schema, registry, &format!("{path}.{name}"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::Object;
    use serde_json::json;

    /// A body shaped like the API's requests: required and optional strings, a defaulted
    /// list, a boolean.
    #[derive(Debug, Object, Validate)]
    struct Sample {
        name: String,
        note: Option<String>,
        #[oai(default)]
        items: Vec<String>,
        #[oai(default)]
        flag: bool,
    }

    fn check(value: Value) -> Result<(), String> {
        let mut registry = Registry::new();
        Sample::register(&mut registry);
        check_types(&value, &Sample::schema_ref(), &registry, "body")
    }

    #[test]
    fn wrong_json_types_are_refused_with_the_field_named() {
        for (body, reason) in [
            (
                json!({"name": false}),
                "body.name: expected a string, found a boolean",
            ),
            (
                json!({"name": 1}),
                "body.name: expected a string, found a number",
            ),
            (json!({"name": null}), "body.name: must not be null"),
            (
                json!({"name": "x", "note": null}),
                "body.note: must not be null",
            ),
            (
                json!({"name": "x", "items": null}),
                "body.items: must not be null",
            ),
            (
                json!({"name": "x", "items": [true]}),
                "body.items[0]: expected a string, found a boolean",
            ),
            (
                json!({"name": "x", "flag": "true"}),
                "body.flag: expected a boolean, found a string",
            ),
            (json!({}), "body.name: required"),
            (json!(["x"]), "body: expected an object, found an array"),
        ] {
            assert_eq!(check(body.clone()), Err(reason.to_string()), "{body}");
        }
    }

    #[test]
    fn bodies_of_the_right_types_pass() {
        assert_eq!(check(json!({"name": "x"})), Ok(()));
        assert_eq!(
            check(json!({"name": "x", "note": "n", "items": ["a"], "flag": true})),
            Ok(())
        );
    }
}
