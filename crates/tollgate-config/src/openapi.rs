//! `openapi_spec`: an OpenAPI 3 document (JSON) whose operations become
//! conversion tools, expanded into the plugin's `tools[]` once at load, so
//! the rest of the gateway sees one list whether tools were written by hand
//! or generated. Each operation with an `operationId` is a tool of that
//! name; its parameters (path item's and operation's) and JSON request body
//! become the tool's. A `tools[]` entry of the same name without an endpoint
//! of its own keeps its ACL and limit and takes the operation's endpoint.

use std::path::Path;

use serde_json::Value;

use crate::error::Report;
use crate::mcp_tools::{McpToolParameter, McpToolRequestBody, ToolMethod};
use crate::schema::{AiMcpProxyConfig, McpToolConfig, PluginConfig};

/// Largest OpenAPI document read.
const MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Deepest chain of `$ref`s followed (a cycle would otherwise never end).
const MAX_REF_DEPTH: usize = 32;

/// Expands every ai-mcp-proxy's `openapi_spec` into its `tools`; relative
/// paths start at the config file's folder.
pub(crate) fn expand(plugins: &mut [Option<PluginConfig>], base_dir: &Path, r: &mut Report<'_>) {
    for (i, slot) in plugins.iter_mut().enumerate() {
        let Some(PluginConfig::AiMcpProxy(c)) = slot else { continue };
        let Some(spec) = c.openapi_spec.clone() else { continue };
        let path = format!("plugins[{i}].config.openapi_spec");
        match read(&base_dir.join(&spec)).and_then(|doc| operations(&doc)) {
            Ok(tools) => merge(c, tools, &path, r),
            Err(e) => r.error(path, format!("OpenAPI document {spec:?}: {e}")),
        }
    }
}

fn read(file: &Path) -> Result<Value, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot be read: {e}"))?;
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("is larger than the limit of {MAX_DOCUMENT_BYTES} bytes"));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot be read: {e}"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("is not JSON: {e}"))?;
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => Ok(doc),
        _ => Err("is not an OpenAPI 3 document (its \"openapi\" field must be 3.x)".into()),
    }
}

/// One tool per operation with an `operationId`, in document order.
fn operations(doc: &Value) -> Result<Vec<McpToolConfig>, String> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Err("has no \"paths\" object".into());
    };
    let mut tools = Vec::new();
    for (template, item) in paths {
        let shared = item.get("parameters").cloned().unwrap_or(Value::Array(Vec::new()));
        for (key, op) in item.as_object().into_iter().flatten() {
            let Some(method) = ToolMethod::from_openapi_key(key) else { continue };
            let Some(name) = op.get("operationId").and_then(Value::as_str) else { continue };
            let at = format!("operation {name:?}");
            let tool = tool(doc, name, method, template, op, &shared).map_err(|e| format!("{at}: {e}"))?;
            tools.push(tool);
        }
    }
    Ok(tools)
}

fn tool(
    doc: &Value,
    name: &str,
    method: ToolMethod,
    template: &str,
    op: &Value,
    shared: &Value,
) -> Result<McpToolConfig, String> {
    let mut parameters: Vec<McpToolParameter> = Vec::new();
    // The operation's parameters override the path item's of the same name and place.
    for p in shared
        .as_array()
        .into_iter()
        .flatten()
        .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
    {
        let p: McpToolParameter = serde_json::from_value(keep_parameter_fields(&resolve(doc, p, 0)?))
            .map_err(|e| format!("a parameter is not one this gateway can send: {e}"))?;
        parameters.retain(|x| !(x.name == p.name && x.location == p.location));
        parameters.push(p);
    }
    for p in &mut parameters {
        p.schema = p.schema.take().map(|s| resolve(doc, &s, 0)).transpose()?;
    }
    let request_body = match op.get("requestBody") {
        Some(b) => Some(request_body(doc, b)?),
        None => None,
    };
    let description = op.get("summary").or_else(|| op.get("description")).and_then(Value::as_str).map(str::to_string);
    Ok(McpToolConfig {
        name: name.to_string(),
        acl: None,
        limit: None,
        description,
        method: Some(method),
        path: Some(template.to_string()),
        parameters,
        request_body,
    })
}

/// A parameter object with only the fields a tool uses (OpenAPI's
/// `style`, `example` and the like are not the gateway's business).
fn keep_parameter_fields(p: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["name", "in", "required", "description", "schema"] {
        if let Some(v) = p.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

fn request_body(doc: &Value, b: &Value) -> Result<McpToolRequestBody, String> {
    let b = resolve(doc, b, 0)?;
    let mut content = serde_json::Map::new();
    for (media, m) in b.get("content").and_then(Value::as_object).into_iter().flatten() {
        let schema = m.get("schema").map(|s| resolve(doc, s, 0)).transpose()?;
        content.insert(media.clone(), serde_json::json!({ "schema": schema }));
    }
    let body = serde_json::json!({
        "description": b.get("description"),
        "required": b.get("required").and_then(Value::as_bool).unwrap_or(false),
        "content": content,
    });
    serde_json::from_value(body).map_err(|e| format!("its requestBody cannot be read: {e}"))
}

/// `v` with every local `$ref` (`#/components/...`) replaced by what it
/// names, so a tool's schema stands on its own.
fn resolve(doc: &Value, v: &Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_REF_DEPTH {
        return Err(format!("$ref chains deeper than {MAX_REF_DEPTH} (a cycle?)"));
    }
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let target = r
                    .strip_prefix('#')
                    .and_then(|p| doc.pointer(p))
                    .ok_or_else(|| format!("$ref {r:?} names nothing in this document"))?;
                return resolve(doc, target, depth + 1);
            }
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(k.clone(), resolve(doc, x, depth)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items.iter().map(|x| resolve(doc, x, depth)).collect::<Result<_, _>>().map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// The document's tools joined with the hand-written ones: an entry of the
/// same name without an endpoint takes the operation's; one with its own
/// endpoint is an error (two definitions of one tool).
fn merge(c: &mut AiMcpProxyConfig, tools: Vec<McpToolConfig>, path: &str, r: &mut Report<'_>) {
    for t in tools {
        match c.tools.iter_mut().find(|x| x.name == t.name) {
            Some(own) if own.defines_endpoint() => r.error(
                path.to_string(),
                format!("tool {:?} is defined in tools[] and in the OpenAPI document", t.name),
            ),
            Some(own) => {
                own.description = own.description.take().or(t.description);
                own.method = t.method;
                own.path = t.path;
                own.parameters = t.parameters;
                own.request_body = t.request_body;
            }
            None => c.tools.push(t),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mcp_tools::ParamLocation;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "openapi": "3.0.3",
            "paths": {
                "/users/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                    "get": {"operationId": "get_user", "summary": "One user",
                            "parameters": [{"$ref": "#/components/parameters/Verbose"}]},
                    "put": {"operationId": "put_user", "requestBody": {"$ref": "#/components/requestBodies/User"}},
                    "delete": {"summary": "no operationId: not a tool"}
                }
            },
            "components": {
                "parameters": {"Verbose": {"name": "verbose", "in": "query", "schema": {"type": "boolean"}, "style": "form"}},
                "requestBodies": {"User": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}}},
                "schemas": {"User": {"type": "object", "properties": {"name": {"type": "string"}}}}
            }
        })
    }

    #[test]
    fn operations_with_an_id_become_tools_with_their_parameters_and_body() {
        let tools = operations(&doc()).unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["get_user", "put_user"]);
        let get = &tools[0];
        assert_eq!(get.method, Some(ToolMethod::Get));
        assert_eq!(get.path.as_deref(), Some("/users/{id}"));
        assert_eq!(get.description.as_deref(), Some("One user"));
        assert_eq!(get.parameters.len(), 2);
        assert_eq!(get.parameters[1].location, ParamLocation::Query);
        let body = tools[1].request_body.as_ref().unwrap();
        assert!(body.required);
        assert_eq!(body.content["application/json"].schema.as_ref().unwrap()["properties"]["name"]["type"], "string");
    }

    #[test]
    fn dangling_and_cyclic_refs_are_errors() {
        let mut d = doc();
        d["paths"]["/users/{id}"]["get"]["parameters"] = json!([{"$ref": "#/components/parameters/Nope"}]);
        assert!(operations(&d).unwrap_err().contains("names nothing"));
        let cyclic = json!({"openapi": "3.1.0", "paths": {"/x": {"post": {"operationId": "x",
            "requestBody": {"$ref": "#/components/a"}}}}, "components": {"a": {"$ref": "#/components/a"}}});
        assert!(operations(&cyclic).unwrap_err().contains("deeper than"));
    }
}
