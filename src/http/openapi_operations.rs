//! The operations of an OpenAPI document as JSON, for the passes that rewrite it
//! ([`super::client_names`], [`super::no_nul`]).

/// Every operation of a document as JSON (the values under each `paths` entry), for the
/// passes that rewrite it.
pub fn operations_mut(doc: &mut serde_json::Value) -> impl Iterator<Item = &mut serde_json::Value> {
    doc.get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}
