//! The OpenAPI 3.1 document, rendered from the route table the router is built from, so every
//! route is documented and every documented route exists.

use beacon_framework::{Access, ApiRoute, App};
use serde_json::{Map, Value, json};

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Everyone => "everyone",
        Access::Staff => "staff",
        Access::Authorized => "authorized",
        Access::Developer => "developer",
    }
}

/// `{name}` segments of a path.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.trim_start_matches("/api/v1").split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.extend(seg.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    }
    id
}

fn success(status: u16) -> Value {
    match status {
        204 => json!({"description": "Done; no content"}),
        302 => json!({"description": "A redirect (see Location)"}),
        _ => json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}}),
    }
}

/// The document.
pub fn document(table: &[(String, ApiRoute)], public_url: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (path, route) in table {
        let method = route.method.as_str().to_ascii_lowercase();
        let mut parameters: Vec<Value> = path_params(path)
            .into_iter()
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(route.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
        }));
        let public = route.access == Access::Everyone && !path.starts_with(super::GUILD_PREFIX);
        let mut op = json!({
            "operationId": operation_id(&method, path),
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                route.success.to_string(): success(route.success),
                "default": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
            "x-beacon-access": access_name(route.access),
        });
        if let Some(body) = route.body {
            let content = if route.csv {
                json!({"text/csv": {"schema": {"type": "string"}}})
            } else {
                json!({"application/json": {"schema": {"type": "object"}}})
            };
            op["requestBody"] = json!({"required": true, "description": body, "content": content});
        }
        if route.is_write()
            && let Some(params) = op["parameters"].as_array_mut()
        {
            params
                .push(json!({"name": "X-CSRF-Token", "in": "header", "required": true, "schema": {"type": "string"}}));
        }
        if !public {
            op["security"] = json!([{"session": []}]);
        }
        let entry = paths.entry(path.clone()).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    paths.insert(
        "/api/v1/openapi.json".into(),
        json!({"get": {
            "operationId": "get_openapi_json",
            "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Beacon API", "version": App::version(), "description": "Beacon's web API: the guilds a Discord login may manage, under the same permissions as in Discord."},
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                }},
            }},
        },
    })
}
