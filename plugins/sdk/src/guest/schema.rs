//! JSON Schemas derived from Rust types (schemars), in the form OpenAPI 3.1 embeds: JSON
//! Schema 2020-12 with every subschema inlined, since a `$ref` inside an operation would
//! resolve against the OpenAPI document, not against the schema it came from.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// The schema of `T`, as a JSON value without the `$schema` keyword.
pub fn of<T: JsonSchema>() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// A body with every kind of field a plugin uses.
    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        /// Shown to people.
        label: Option<String>,
        #[schemars(length(max = 100))]
        full_name: String,
        inner: Inner,
        tags: Vec<Inner>,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn camel_case_closed_objects_with_inlined_subschemas() {
        let s = of::<Body>();
        assert!(s.get("$schema").is_none());
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["fullName"]["maxLength"], 100);
        assert_eq!(s["properties"]["label"]["description"], "Shown to people.");
        assert_eq!(
            s["properties"]["inner"]["properties"]["n"]["type"],
            "integer"
        );
        assert_eq!(s["properties"]["tags"]["items"]["type"], "object");
        assert!(!s.to_string().contains("$ref"), "{s}");
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(required.contains(&"fullName") && !required.contains(&"label"));
    }
}
