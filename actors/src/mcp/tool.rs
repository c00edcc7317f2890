//! What a tool is: its name, schemas, annotations and handler ([`Tool`]), how a handler's
//! typed arguments and result become JSON ([`tool`]), and the result shapes of success and
//! failure. The catalog of the server's tools is in [`super::tools`].

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::context::RequestContext;
use crate::error::VaultError;
use crate::vault::Vault;

/// What a tool does to the vault, for scopes and the MCP annotations.
///
/// The effect decides which right a token needs at all; a folder-scoped token is further
/// checked by the handler against the note or folder the call names (`insufficient_scope`
/// outside its folders), and listings, searches and tags only show what it may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only reads.
    Read,
    /// Creates or replaces content; repeating the same call gives the same note.
    Write,
    /// Changes part of a note; repeating the call may change it again (an append appends
    /// twice).
    Edit,
    /// Removes content.
    Destroy,
    /// Changes derived data only (the index), never a note; needs write rights.
    Maintain,
}

type Handler =
    Box<dyn Fn(&mut Vault, &RequestContext<'_>, Value) -> Result<Value, VaultError> + Send + Sync>;

/// One entry of the catalog.
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    input_schema: Value,
    /// Absent only for test fixtures whose results are content, not data.
    output_schema: Option<Value>,
    run: Handler,
}

impl Tool {
    /// The tool as `tools/list` describes it.
    pub fn describe(&self) -> Value {
        let mut d = json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.effect == Effect::Read,
                "destructiveHint": self.effect == Effect::Destroy,
                "idempotentHint": !matches!(self.effect, Effect::Destroy | Effect::Edit),
                "openWorldHint": false,
            },
        });
        if let Some(schema) = &self.output_schema {
            d["outputSchema"] = schema.clone();
        }
        d
    }

    /// Run the tool for the request's caller and return its `tools/call` result; a failure of
    /// the tool itself (bad path, not found, ...) is a `VaultError`, which the caller turns
    /// into an `isError` result.
    pub fn call(
        &self,
        vault: &mut Vault,
        ctx: &RequestContext<'_>,
        args: Value,
    ) -> Result<Value, VaultError> {
        self.permits(ctx.caller)?;
        (self.run)(vault, ctx, args)
    }

    /// Does the caller's token allow this tool's effect at all (before any path is checked)?
    pub fn permits(&self, caller: &crate::caller::Caller) -> Result<(), VaultError> {
        match self.effect {
            Effect::Read if !caller.can_read() => {
                return Err(VaultError::InsufficientScope(
                    "read notes (needs notes:read)",
                ))
            }
            Effect::Write | Effect::Edit | Effect::Destroy | Effect::Maintain
                if !caller.can_write() =>
            {
                return Err(VaultError::InsufficientScope(
                    "change notes (needs notes:write)",
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// A `tools/call` result for a successful tool: structured content plus its JSON as text, for
/// clients that only read text.
pub fn success_result(structured: Value) -> Value {
    let text = structured.to_string();
    result_with_text(structured, text)
}

/// [`success_result`] when the JSON text is already at hand.
pub(crate) fn result_with_text(structured: Value, text: String) -> Value {
    json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": structured,
        "isError": false,
    })
}

/// A `tools/call` result for a failed tool: a message a model can act on and a stable code.
pub fn error_result(err: &VaultError) -> Value {
    json!({
        "content": [{ "type": "text", "text": err.to_string() }],
        "structuredContent": err.details(),
        "isError": true,
    })
}

fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(json!({}));
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
        obj.entry("type").or_insert(json!("object"));
        obj.entry("properties").or_insert(json!({}));
    }
    drop_rust_formats(&mut schema);
    schema
}

/// `schemars` names Rust integer widths as `format` (`uint64`, `int32`, ...), which JSON Schema
/// does not know and validators warn about; an unsigned width becomes `minimum: 0` instead.
fn drop_rust_formats(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if let Some(Value::String(f)) = obj.get("format") {
                if f.starts_with("uint") || f.starts_with("int") || f == "double" || f == "float" {
                    let unsigned = f.starts_with("uint");
                    obj.remove("format");
                    if unsigned {
                        obj.entry("minimum").or_insert(json!(0));
                    }
                }
            }
            obj.values_mut().for_each(drop_rust_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_rust_formats),
        _ => {}
    }
}

/// The output schema of a tool: its success shape, or the error shape every tool shares
/// (`isError` results carry `{code, message, ...}` as structured content, and clients check
/// those against the schema too).
fn output_schema_of<T: JsonSchema>() -> Value {
    json!({
        "type": "object",
        "anyOf": [
            schema_of::<T>(),
            {
                "type": "object",
                "properties": {
                    "code": { "type": "string", "description": "stable error code, e.g. not_found" },
                    "message": { "type": "string" },
                },
                "required": ["code", "message"],
            },
        ],
    })
}

pub(super) fn tool<A, O>(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    effect: Effect,
    handler: fn(&mut Vault, &RequestContext<'_>, A) -> Result<O, VaultError>,
) -> Tool
where
    A: DeserializeOwned + JsonSchema + 'static,
    O: Serialize + JsonSchema + 'static,
{
    Tool {
        name,
        title,
        description,
        effect,
        input_schema: schema_of::<A>(),
        output_schema: Some(output_schema_of::<O>()),
        run: Box::new(move |vault, ctx, args| {
            let args: A = serde_json::from_value(args)
                .map_err(|e| VaultError::InvalidArguments(format!("{name}: {e}")))?;
            let out = handler(vault, ctx, args)?;
            let json_error = |e: serde_json::Error| VaultError::Io(std::io::Error::other(e));
            // The text straight from the struct (fields in the same order as the structured
            // value): one pass over a note body fewer than printing the value.
            let text = serde_json::to_string(&out).map_err(json_error)?;
            let structured = serde_json::to_value(out).map_err(json_error)?;
            Ok(result_with_text(structured, text))
        }),
    }
}

/// A tool whose handler builds its whole `tools/call` result (content items of any kind).
#[cfg(feature = "conformance")]
pub(crate) fn content_tool(
    name: &'static str,
    description: &'static str,
    input_schema: Value,
    run: fn(&RequestContext<'_>, Value) -> Result<Value, VaultError>,
) -> Tool {
    Tool {
        name,
        title: name,
        description,
        effect: Effect::Read,
        input_schema,
        output_schema: None,
        run: Box::new(move |_vault, ctx, args| run(ctx, args)),
    }
}
