//! Request matching and validation: Discord's OpenAPI description plus the documented rules it
//! does not encode (message and embed limits, command naming, choice counts, ...).

use crate::error::Error;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// URI the OpenAPI document is registered under so `#/components/...` refs resolve.
const DOC_URI: &str = "https://discord.com/api/v10/openapi.json";

/// One path segment of a route template.
#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    Param(String),
}

/// One REST operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `operationId` from the spec.
    pub id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template below `/api/v10`.
    pub template: String,
    segments: Vec<Seg>,
    /// Authorization is optional (interaction and webhook-token routes).
    pub token_route: bool,
    /// JSON schema of the request body.
    pub body_schema: Option<Value>,
}

/// A matched route with its path parameters.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The operation.
    pub op: Operation,
    /// Path parameters by name.
    pub params: HashMap<String, String>,
}

impl Matched {
    /// A snowflake path parameter.
    pub fn id(&self, name: &str) -> u64 {
        self.params.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// The route table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    ops: Vec<Operation>,
}

/// Operations the fake implements, used when no OpenAPI document is configured.
const BUILTIN: &[(&str, &str, &str)] = &[
    ("GET", "/gateway", "get_gateway"),
    ("GET", "/gateway/bot", "get_bot_gateway"),
    ("GET", "/users/@me", "get_my_user"),
    ("GET", "/users/{user_id}", "get_user"),
    ("POST", "/users/@me/channels", "create_dm"),
    ("GET", "/users/@me/guilds", "list_my_guilds"),
    ("GET", "/applications/@me", "get_my_application"),
    ("GET", "/oauth2/applications/@me", "get_my_oauth2_application"),
    ("GET", "/guilds/{guild_id}", "get_guild"),
    ("GET", "/guilds/{guild_id}/channels", "list_guild_channels"),
    ("POST", "/guilds/{guild_id}/channels", "create_guild_channel"),
    ("GET", "/guilds/{guild_id}/roles", "list_guild_roles"),
    ("POST", "/guilds/{guild_id}/roles", "create_guild_role"),
    ("DELETE", "/guilds/{guild_id}/roles/{role_id}", "delete_guild_role"),
    ("GET", "/guilds/{guild_id}/members", "list_guild_members"),
    ("GET", "/guilds/{guild_id}/members/search", "search_guild_members"),
    ("GET", "/guilds/{guild_id}/members/{user_id}", "get_guild_member"),
    ("PATCH", "/guilds/{guild_id}/members/{user_id}", "update_guild_member"),
    ("DELETE", "/guilds/{guild_id}/members/{user_id}", "delete_guild_member"),
    ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", "add_guild_member_role"),
    ("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", "delete_guild_member_role"),
    ("GET", "/guilds/{guild_id}/bans", "list_guild_bans"),
    ("GET", "/guilds/{guild_id}/bans/{user_id}", "get_guild_ban"),
    ("PUT", "/guilds/{guild_id}/bans/{user_id}", "ban_user_from_guild"),
    ("DELETE", "/guilds/{guild_id}/bans/{user_id}", "unban_user_from_guild"),
    ("POST", "/guilds/{guild_id}/bulk-ban", "bulk_ban_users_from_guild"),
    ("GET", "/guilds/{guild_id}/audit-logs", "list_guild_audit_log_entries"),
    ("GET", "/guilds/{guild_id}/threads/active", "get_active_guild_threads"),
    ("GET", "/channels/{channel_id}", "get_channel"),
    ("PATCH", "/channels/{channel_id}", "update_channel"),
    ("DELETE", "/channels/{channel_id}", "delete_channel"),
    ("GET", "/channels/{channel_id}/messages", "list_messages"),
    ("POST", "/channels/{channel_id}/messages", "create_message"),
    ("POST", "/channels/{channel_id}/messages/bulk-delete", "bulk_delete_messages"),
    ("GET", "/channels/{channel_id}/messages/{message_id}", "get_message"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", "update_message"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", "delete_message"),
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me", "add_my_message_reaction"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me", "delete_my_message_reaction"),
    (
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/{user_id}",
        "delete_user_message_reaction",
    ),
    ("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}", "list_message_reactions_by_emoji"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", "delete_all_message_reactions"),
    ("POST", "/channels/{channel_id}/messages/{message_id}/threads", "create_thread_from_message"),
    ("POST", "/channels/{channel_id}/threads", "create_thread"),
    ("PUT", "/channels/{channel_id}/thread-members/@me", "join_thread"),
    ("PUT", "/channels/{channel_id}/thread-members/{user_id}", "add_thread_member"),
    ("DELETE", "/channels/{channel_id}/thread-members/{user_id}", "delete_thread_member"),
    ("GET", "/channels/{channel_id}/thread-members", "list_thread_members"),
    ("POST", "/channels/{channel_id}/typing", "trigger_typing_indicator"),
    ("PUT", "/channels/{channel_id}/permissions/{overwrite_id}", "set_channel_permission_overwrite"),
    ("GET", "/applications/{application_id}/commands", "list_application_commands"),
    ("PUT", "/applications/{application_id}/commands", "bulk_set_application_commands"),
    ("POST", "/applications/{application_id}/commands", "create_application_command"),
    ("GET", "/applications/{application_id}/commands/{command_id}", "get_application_command"),
    ("PATCH", "/applications/{application_id}/commands/{command_id}", "update_application_command"),
    ("DELETE", "/applications/{application_id}/commands/{command_id}", "delete_application_command"),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "list_guild_application_commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "bulk_set_guild_application_commands"),
    ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", "create_guild_application_command"),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}", "get_guild_application_command"),
    (
        "PATCH",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
        "update_guild_application_command",
    ),
    (
        "DELETE",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
        "delete_guild_application_command",
    ),
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", "create_interaction_response"),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}", "execute_webhook"),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "get_original_webhook_message"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "update_original_webhook_message"),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "delete_original_webhook_message"),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "get_webhook_message"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "update_webhook_message"),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "delete_webhook_message"),
];

fn parse_template(template: &str) -> Vec<Seg> {
    template
        .trim_matches('/')
        .split('/')
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Seg::Param(name.to_owned()),
            None => Seg::Lit(s.to_owned()),
        })
        .collect()
}

fn is_token_template(template: &str) -> bool {
    template.starts_with("/interactions/") || template.starts_with("/webhooks/{webhook_id}/{webhook_token}")
}

impl Routes {
    /// The fake's own table (no schemas).
    pub fn builtin() -> Self {
        let ops = BUILTIN
            .iter()
            .map(|(method, template, id)| Operation {
                id: (*id).to_owned(),
                method: (*method).to_owned(),
                template: (*template).to_owned(),
                segments: parse_template(template),
                token_route: is_token_template(template),
                body_schema: None,
            })
            .collect();
        Self { ops }
    }

    /// Every operation of an OpenAPI document.
    pub fn from_spec(doc: &Value) -> Self {
        let mut ops = Vec::new();
        let Some(paths) = doc["paths"].as_object() else {
            return Self { ops };
        };
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if method == "parameters" {
                    continue;
                }
                let Some(id) = op["operationId"].as_str() else {
                    continue;
                };
                // `security: [{}, {BotToken: []}]` marks routes callable without a token.
                let token_route = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
                ops.push(Operation {
                    id: id.to_owned(),
                    method: method.to_uppercase(),
                    template: template.clone(),
                    segments: parse_template(template),
                    token_route,
                    body_schema: op["requestBody"]["content"]["application/json"]["schema"]
                        .as_object()
                        .map(|s| rewrite_refs(Value::Object(s.clone()))),
                });
            }
        }
        Self { ops }
    }

    /// Match a request path (below `/api/v10`, without query); literal segments win over
    /// parameters (`/members/@me` before `/members/{user_id}`).
    pub fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, &Operation, HashMap<String, String>)> = None;
        for op in self.ops.iter().filter(|o| o.method == method) {
            if op.segments.len() != parts.len() {
                continue;
            }
            let mut params = HashMap::new();
            let mut literals = 0;
            let ok = op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                Seg::Lit(l) => {
                    literals += 1;
                    l == part
                }
                Seg::Param(name) => {
                    params.insert(name.clone(), (*part).to_owned());
                    !part.is_empty()
                }
            });
            if ok && best.as_ref().is_none_or(|(n, _, _)| literals > *n) {
                best = Some((literals, op, params));
            }
        }
        best.map(|(_, op, params)| Matched { op: op.clone(), params })
    }

    /// Whether any operation exists for this path with another method.
    pub fn path_known(&self, path: &str) -> bool {
        ["GET", "POST", "PUT", "PATCH", "DELETE"].iter().any(|m| self.find(m, path).is_some())
    }
}

/// Make `#/...` refs absolute so they resolve inside the registered document.
fn rewrite_refs(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "$ref"
                    && let Some(r) = child.as_str()
                    && r.starts_with('#')
                {
                    *child = Value::String(format!("{DOC_URI}{r}"));
                } else {
                    *child = rewrite_refs(std::mem::take(child));
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = rewrite_refs(std::mem::take(item));
            }
        }
        _ => {}
    }
    v
}

/// Where the preview spec disagrees with Discord's documentation, the docs win. Each override is
/// narrow and names the documented rule.
fn apply_docs_overrides(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                // Docs (Application Commands, "default_member_permissions"): "?string — set of
                // permissions represented as a bit set". The spec types it integer-only.
                if props.contains_key("default_member_permissions") {
                    props.insert(
                        "default_member_permissions".into(),
                        serde_json::json!({ "type": ["string", "integer", "null"], "pattern": "^[0-9]+$" }),
                    );
                }
            }
            // Docs (Channel, "Overwrite Object"; Permissions: "serialized into a string"): an
            // overwrite's `allow` and `deny` are strings of permission bits. The spec types the
            // request side integer-only.
            if let Some(Value::Object(props)) = map.get_mut("properties")
                && props.contains_key("allow")
                && props.contains_key("deny")
                && props.contains_key("type")
            {
                for key in ["allow", "deny"] {
                    props.insert(
                        key.into(),
                        serde_json::json!({ "type": ["string", "integer", "null"], "pattern": "^[0-9]+$" }),
                    );
                }
            }
            for child in map.values_mut() {
                apply_docs_overrides(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(apply_docs_overrides),
        _ => {}
    }
    // Docs (Uploading Files): attachment placeholders in `attachments` use the upload's index,
    // e.g. `{"id": 0}`; the spec types the id as a snowflake string only.
    if let Some(Value::Object(props)) = v.pointer_mut("/components/schemas/MessageAttachmentRequest/properties") {
        props.insert("id".into(), serde_json::json!({ "type": ["string", "integer"], "pattern": "^[0-9]+$" }));
    }
}

/// A loaded OpenAPI description with compiled body validators.
pub struct Spec {
    /// The route table.
    pub routes: Routes,
    registry: Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").field("routes", &self.routes.ops.len()).finish()
    }
}

/// Specs are large; every fake in a process shares one per path.
static SPECS: OnceLock<Mutex<HashMap<PathBuf, Arc<Spec>>>> = OnceLock::new();

impl Spec {
    /// Load (once per process and path) and index the document.
    pub fn load(path: &Path) -> Result<Arc<Spec>, Error> {
        let cache = SPECS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut cache = cache.lock().map_err(|_| Error::Spec("spec cache poisoned".into()))?;
        if let Some(spec) = cache.get(path) {
            return Ok(spec.clone());
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Spec(format!("reading {}: {e}", path.display())))?;
        let mut doc: Value =
            serde_json::from_str(&text).map_err(|e| Error::Spec(format!("parsing {}: {e}", path.display())))?;
        apply_docs_overrides(&mut doc);
        let routes = Routes::from_spec(&doc);
        if routes.ops.is_empty() {
            return Err(Error::Spec(format!("{} has no paths", path.display())));
        }
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(DOC_URI, doc)
            .and_then(|b| b.prepare())
            .map_err(|e| Error::Spec(format!("indexing schemas: {e}")))?;
        let spec = Arc::new(Spec { routes, registry, validators: Mutex::new(HashMap::new()) });
        cache.insert(path.to_owned(), spec.clone());
        Ok(spec)
    }

    /// Validate a JSON body against the operation's request schema.
    pub fn validate(&self, op: &Operation, body: &Value) -> Vec<FieldError> {
        let Some(schema) = &op.body_schema else {
            return Vec::new();
        };
        let validator = {
            let Ok(mut cache) = self.validators.lock() else {
                return Vec::new();
            };
            match cache.get(&op.id) {
                Some(v) => v.clone(),
                None => {
                    let built = jsonschema::options()
                        .with_draft(Draft::Draft202012)
                        .with_registry(&self.registry)
                        .build(schema);
                    match built {
                        Ok(v) => {
                            let v = Arc::new(v);
                            cache.insert(op.id.clone(), v.clone());
                            v
                        }
                        Err(e) => {
                            tracing::warn!(operation = %op.id, error = %e, "schema does not compile");
                            return Vec::new();
                        }
                    }
                }
            }
        };
        validator
            .iter_errors(body)
            .map(|e| FieldError {
                path: e
                    .instance_path()
                    .as_str()
                    .split('/')
                    .skip(1)
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect(),
                code: "SCHEMA_VALIDATION",
                message: e.to_string(),
            })
            .collect()
    }
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Path to the field (`["embeds", "0", "title"]`).
    pub path: Vec<String>,
    /// Discord-style error code.
    pub code: &'static str,
    /// Human-readable reason.
    pub message: String,
}

impl FieldError {
    fn new(path: &[String], key: impl ToString, code: &'static str, message: String) -> Self {
        let mut path = path.to_vec();
        let key = key.to_string();
        if !key.is_empty() {
            path.push(key);
        }
        Self { path, code, message }
    }

    /// `path: message`.
    pub fn describe(&self) -> String {
        if self.path.is_empty() { self.message.clone() } else { format!("{}: {}", self.path.join("."), self.message) }
    }
}

/// Discord's nested `errors` object for a 50035 answer.
pub fn errors_json(errors: &[FieldError]) -> Value {
    let mut root = json!({});
    for e in errors {
        let mut node = &mut root;
        for seg in &e.path {
            if !node.is_object() {
                *node = json!({});
            }
            node = node
                .as_object_mut()
                .map(|o| o.entry(seg.clone()).or_insert_with(|| json!({})))
                .expect("node was made an object above");
        }
        if !node.is_object() {
            *node = json!({});
        }
        let list = node
            .as_object_mut()
            .map(|o| o.entry("_errors").or_insert_with(|| json!([])))
            .expect("node was made an object above");
        if let Some(arr) = list.as_array_mut() {
            arr.push(json!({"code": e.code, "message": e.message}));
        }
    }
    root
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn check_len(errs: &mut Vec<FieldError>, path: &[String], obj: &Value, key: &str, min: usize, max: usize) {
    let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
        if min > 0 {
            errs.push(FieldError::new(path, key, "BASE_TYPE_REQUIRED", "This field is required".into()));
        }
        return;
    };
    let n = chars(v);
    if n < min || n > max {
        errs.push(FieldError::new(
            path,
            key,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between {min} and {max} in length (got {n})."),
        ));
    }
}

fn count(errs: &mut Vec<FieldError>, path: &[String], obj: &Value, key: &str, max: usize) {
    if let Some(n) = obj.get(key).and_then(Value::as_array).map(Vec::len)
        && n > max
    {
        errs.push(FieldError::new(
            path,
            key,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {max} or fewer in length (got {n})."),
        ));
    }
}

fn sub(path: &[String], key: impl ToString) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(key.to_string());
    p
}

/// Rules for a message body (create/edit message, webhook, interaction response data).
pub fn message_rules(body: &Value, path: &[String], errs: &mut Vec<FieldError>) {
    if !body.is_object() {
        return;
    }
    if body.get("content").and_then(Value::as_str).is_some_and(|c| c.chars().count() > 2000) {
        errs.push(FieldError::new(
            path,
            "content",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be 2000 or fewer in length (got {}).", chars(&body["content"])),
        ));
    }
    count(errs, path, body, "embeds", 10);
    if let Some(embeds) = body.get("embeds").and_then(Value::as_array) {
        let mut total = 0;
        for (i, e) in embeds.iter().enumerate() {
            let p = sub(&sub(path, "embeds"), i);
            check_len(errs, &p, e, "title", 0, 256);
            check_len(errs, &p, e, "description", 0, 4096);
            count(errs, &p, e, "fields", 25);
            total += chars(&e["title"]) + chars(&e["description"]);
            total += chars(&e["footer"]["text"]) + chars(&e["author"]["name"]);
            check_len(errs, &sub(&p, "footer"), &e["footer"], "text", 0, 2048);
            check_len(errs, &sub(&p, "author"), &e["author"], "name", 0, 256);
            for (j, f) in e["fields"].as_array().into_iter().flatten().enumerate() {
                let fp = sub(&sub(&p, "fields"), j);
                check_len(errs, &fp, f, "name", 1, 256);
                check_len(errs, &fp, f, "value", 1, 1024);
                total += chars(&f["name"]) + chars(&f["value"]);
            }
        }
        if total > 6000 {
            errs.push(FieldError::new(
                path,
                "embeds",
                "MAX_EMBED_SIZE_EXCEEDED",
                format!("Embed size exceeds maximum size of 6000 (got {total})"),
            ));
        }
    }
    let v2 = body["flags"].as_u64().unwrap_or(0) & (1 << 15) != 0;
    if !v2 {
        count(errs, path, body, "components", 5);
        for (i, row) in body["components"].as_array().into_iter().flatten().enumerate() {
            let rp = sub(&sub(path, "components"), i);
            if row["type"].as_u64() != Some(1) {
                errs.push(FieldError::new(
                    &rp,
                    "type",
                    "COMPONENT_LAYOUT_INVALID",
                    "Top-level components must be action rows (type 1) without IS_COMPONENTS_V2".into(),
                ));
                continue;
            }
            component_rules(row, &rp, errs);
        }
    }
}

fn component_rules(row: &Value, rp: &[String], errs: &mut Vec<FieldError>) {
    let children = row["components"].as_array().cloned().unwrap_or_default();
    if children.is_empty() || children.len() > 5 {
        errs.push(FieldError::new(
            rp,
            "components",
            "BASE_TYPE_BAD_LENGTH",
            format!("An action row holds 1 to 5 components (got {}).", children.len()),
        ));
    }
    let has_select = children.iter().any(|c| matches!(c["type"].as_u64(), Some(3 | 5..=8)));
    if has_select && children.len() > 1 {
        errs.push(FieldError::new(
            rp,
            "components",
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "A select menu must be alone in its action row.".into(),
        ));
    }
    for (j, c) in children.iter().enumerate() {
        let cp = sub(&sub(rp, "components"), j);
        let link = c["type"].as_u64() == Some(2) && matches!(c["style"].as_u64(), Some(5 | 6));
        if !link {
            check_len(errs, &cp, c, "custom_id", 1, 100);
        }
        check_len(errs, &cp, c, "label", 0, 80);
        check_len(errs, &cp, c, "placeholder", 0, 150);
        count(errs, &cp, c, "options", 25);
    }
}

fn name_ok(name: &str, chat_input: bool) -> bool {
    let n = name.chars().count();
    if !(1..=32).contains(&n) {
        return false;
    }
    if !chat_input {
        return true;
    }
    name.chars().all(|c| c == '-' || c == '_' || c == '\'' || c.is_alphanumeric()) && name.to_lowercase() == name
}

/// Rules for one application command definition.
pub fn command_rules(cmd: &Value, path: &[String], errs: &mut Vec<FieldError>) {
    let kind = cmd["type"].as_u64().unwrap_or(1);
    let chat = kind == 1;
    match cmd["name"].as_str() {
        Some(name) if name_ok(name, chat) => {}
        Some(name) => errs.push(FieldError::new(
            path,
            "name",
            "APPLICATION_COMMAND_INVALID_NAME",
            format!("Command name {name:?} must match ^[-_'\\p{{L}}\\p{{N}}]{{1,32}}$ and be lowercase"),
        )),
        None => errs.push(FieldError::new(path, "name", "BASE_TYPE_REQUIRED", "This field is required".into())),
    }
    if chat {
        check_len(errs, path, cmd, "description", 1, 100);
    } else if chars(&cmd["description"]) > 0 {
        errs.push(FieldError::new(
            path,
            "description",
            "APPLICATION_COMMAND_INVALID_DESCRIPTION",
            "User and message commands cannot have a description".into(),
        ));
    }
    options_rules(&cmd["options"], &sub(path, "options"), 0, errs);
}

fn options_rules(options: &Value, path: &[String], depth: u8, errs: &mut Vec<FieldError>) {
    let Some(opts) = options.as_array() else {
        return;
    };
    if opts.len() > 25 {
        errs.push(FieldError::new(
            path,
            "",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be 25 or fewer in length (got {}).", opts.len()),
        ));
    }
    let mut seen_optional = false;
    let mut names = Vec::new();
    let subs = opts.iter().filter(|o| matches!(o["type"].as_u64(), Some(1 | 2))).count();
    if subs > 0 && subs != opts.len() {
        errs.push(FieldError::new(
            path,
            "",
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-commands and groups cannot be mixed with other options".into(),
        ));
    }
    for (i, o) in opts.iter().enumerate() {
        let p = sub(path, i);
        let kind = o["type"].as_u64().unwrap_or(0);
        if !(1..=11).contains(&kind) {
            errs.push(FieldError::new(&p, "type", "BASE_TYPE_CHOICES", format!("Invalid option type {kind}")));
        }
        if kind == 2 && depth > 0 || kind == 1 && depth > 1 {
            errs.push(FieldError::new(
                &p,
                "type",
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "Sub-commands nest at most command → group → sub-command".into(),
            ));
        }
        match o["name"].as_str() {
            Some(n) if name_ok(n, true) => {
                if names.contains(&n) {
                    errs.push(FieldError::new(
                        &p,
                        "name",
                        "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                        format!("Duplicate option name {n:?}"),
                    ));
                }
                names.push(n);
            }
            other => errs.push(FieldError::new(
                &p,
                "name",
                "APPLICATION_COMMAND_INVALID_NAME",
                format!("Invalid option name {other:?}"),
            )),
        }
        check_len(errs, &p, o, "description", 1, 100);
        let required = o["required"].as_bool().unwrap_or(false);
        if required && seen_optional {
            errs.push(FieldError::new(
                &p,
                "required",
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options".into(),
            ));
        }
        if !required && !matches!(kind, 1 | 2) {
            seen_optional = true;
        }
        count(errs, &p, o, "choices", 25);
        if o["autocomplete"].as_bool() == Some(true) && o["choices"].as_array().is_some_and(|c| !c.is_empty()) {
            errs.push(FieldError::new(
                &p,
                "autocomplete",
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be set with choices".into(),
            ));
        }
        for (j, c) in o["choices"].as_array().into_iter().flatten().enumerate() {
            let cp = sub(&sub(&p, "choices"), j);
            check_len(errs, &cp, c, "name", 1, 100);
            if c["value"].is_string() {
                check_len(errs, &cp, c, "value", 1, 100);
            }
        }
        if matches!(kind, 1 | 2) {
            options_rules(&o["options"], &sub(&p, "options"), depth + 1, errs);
        }
    }
}

/// Autocomplete choices (response type 8).
pub fn choices_rules(data: &Value, path: &[String], errs: &mut Vec<FieldError>) {
    count(errs, path, data, "choices", 25);
    for (j, c) in data["choices"].as_array().into_iter().flatten().enumerate() {
        let cp = sub(&sub(path, "choices"), j);
        check_len(errs, &cp, c, "name", 1, 100);
        if c["value"].is_string() {
            check_len(errs, &cp, c, "value", 1, 100);
        }
    }
}

/// A modal (response type 9).
pub fn modal_rules(data: &Value, path: &[String], errs: &mut Vec<FieldError>) {
    check_len(errs, path, data, "custom_id", 1, 100);
    check_len(errs, path, data, "title", 1, 45);
    let n = data["components"].as_array().map_or(0, Vec::len);
    if !(1..=5).contains(&n) {
        errs.push(FieldError::new(
            path,
            "components",
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and 5 in length (got {n})."),
        ));
    }
}

/// Whether a message body has something to show (else Discord answers 50006).
pub fn message_is_empty(body: &Value) -> bool {
    let nonempty = |k: &str| body.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    body["content"].as_str().is_none_or(str::is_empty)
        && !nonempty("embeds")
        && !nonempty("components")
        && !nonempty("sticker_ids")
        && !nonempty("attachments")
        && body.get("poll").is_none_or(Value::is_null)
}

/// The documented rules for an operation's body that the OpenAPI schema does not encode.
pub fn extra_rules(op_id: &str, body: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let root: Vec<String> = Vec::new();
    if op_id == "create_message"
        && let Some(nonce) = body.get("nonce").and_then(Value::as_str)
        && nonce.chars().count() > 25
    {
        errs.push(FieldError::new(
            &root,
            "nonce",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be 25 or fewer in length (got {}).", nonce.chars().count()),
        ));
    }
    match op_id {
        "create_message"
        | "update_message"
        | "execute_webhook"
        | "update_webhook_message"
        | "update_original_webhook_message" => message_rules(body, &root, &mut errs),
        "create_application_command"
        | "create_guild_application_command"
        | "update_application_command"
        | "update_guild_application_command" => {
            command_rules(body, &root, &mut errs);
        }
        "bulk_set_application_commands" | "bulk_set_guild_application_commands" => {
            let cmds = body.as_array().cloned().unwrap_or_default();
            let mut seen = Vec::new();
            for (i, c) in cmds.iter().enumerate() {
                command_rules(c, &sub(&root, i), &mut errs);
                let key = (c["type"].as_u64().unwrap_or(1), c["name"].as_str().unwrap_or_default().to_owned());
                if seen.contains(&key) {
                    errs.push(FieldError::new(
                        &sub(&root, i),
                        "name",
                        "APPLICATION_COMMANDS_DUPLICATE_NAME",
                        format!("Application command names must be unique ({:?})", key.1),
                    ));
                }
                seen.push(key);
            }
            if cmds.iter().filter(|c| c["type"].as_u64().unwrap_or(1) == 1).count() > 100 {
                errs.push(FieldError::new(&root, "", "BASE_TYPE_MAX_LENGTH", "At most 100 chat input commands".into()));
            }
        }
        "create_interaction_response" => match body["type"].as_u64() {
            Some(4 | 7) => message_rules(&body["data"], &sub(&root, "data"), &mut errs),
            Some(8) => choices_rules(&body["data"], &sub(&root, "data"), &mut errs),
            Some(9) => modal_rules(&body["data"], &sub(&root, "data"), &mut errs),
            _ => {}
        },
        "create_guild_channel" | "create_thread" | "create_thread_from_message" => {
            check_len(&mut errs, &root, body, "name", 1, 100);
        }
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win() {
        let r = Routes::builtin();
        let m = r.find("PATCH", "/webhooks/1/tok/messages/@original").unwrap();
        assert_eq!(m.op.id, "update_original_webhook_message");
        let m = r.find("PATCH", "/webhooks/1/tok/messages/55").unwrap();
        assert_eq!(m.op.id, "update_webhook_message");
        assert_eq!(m.id("message_id"), 55);
        assert!(r.find("GET", "/nope").is_none());
    }

    #[test]
    fn long_content_and_bad_names_are_caught() {
        let errs = extra_rules("create_message", &json!({"content": "x".repeat(2001)}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, vec!["content"]);
        let errs = extra_rules("create_application_command", &json!({"name": "Bad Name", "description": "d"}));
        assert_eq!(errs[0].code, "APPLICATION_COMMAND_INVALID_NAME");
        let choices: Vec<_> = (0..26).map(|i| json!({"name": i.to_string(), "value": i.to_string()})).collect();
        let errs = extra_rules("create_interaction_response", &json!({"type": 8, "data": {"choices": choices}}));
        assert_eq!(errs[0].path, vec!["data", "choices"]);
        assert!(extra_rules("create_application_command", &json!({"name": "ok-name", "description": "d", "options": [{"type": 3, "name": "q", "description": "d", "required": true}]})).is_empty());
    }

    #[test]
    fn errors_nest_like_discord() {
        let e = errors_json(&[FieldError {
            path: vec!["embeds".into(), "0".into(), "title".into()],
            code: "X",
            message: "m".into(),
        }]);
        assert_eq!(e["embeds"]["0"]["title"]["_errors"][0]["code"], "X");
    }
}
