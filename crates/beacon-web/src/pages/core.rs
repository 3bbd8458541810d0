//! The framework's own pages: the first page (setup on a fresh install, then the login and the
//! server list), a server's settings (generated from the settings schema, with the audit
//! history and one-click revert, and the module switches) and its access (authorized users).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::guild::{GuildCtx, parse_guild, post_then, with_done};
use super::modules::{SectionView, local_search};
use super::view::{Flash, Layout, fail, time};
use super::{Failure, PagesState, html, see_other};

type Fields = Vec<(String, String)>;

fn first<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn all<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

#[derive(Template)]
#[template(path = "setup.html")]
struct Setup {
    layout: Layout,
    steps: Vec<Step>,
    sections: Vec<SectionView>,
    action: String,
    upload: String,
}

struct Step {
    title: String,
    text: String,
    code: Vec<String>,
    /// A link to follow (empty: none) and its text.
    href: String,
    link_label: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    layout: Layout,
    enabled: bool,
    redirect_uri: String,
}

#[derive(Template)]
#[template(path = "guilds.html")]
struct Guilds {
    layout: Layout,
    rows: Vec<GuildRow>,
}

struct GuildRow {
    id: String,
    name: String,
    present: bool,
    read_only: bool,
}

/// `GET /`: setup on a fresh install (no bot token yet), else the login, else the servers.
pub async fn home(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let app = &state.app;
    if app.config.discord.token.is_none() {
        let sections = local_search(&state, q.get("q").map(String::as_str)).await;
        let page = Setup {
            layout: Layout::bare("Welcome"),
            steps: setup_steps(&state),
            sections,
            action: "/".into(),
            upload: String::new(),
        };
        return html(StatusCode::OK, &page);
    }
    let api = state.api(&headers);
    let layout = match Layout::user(&api, "Your servers").await {
        Ok(l) => l,
        Err(f) if f.status == StatusCode::UNAUTHORIZED || f.code == "login_disabled" => {
            let health = api.get("/api/v1/health").await.unwrap_or(Value::Null);
            let page = Login {
                layout: Layout::bare("Log in"),
                enabled: health["login"].as_bool().unwrap_or(false),
                redirect_uri: format!("{}/api/v1/auth/callback", app.public_url()),
            };
            return html(StatusCode::OK, &page);
        }
        Err(f) => return fail(f),
    };
    let guilds = match api.get("/api/v1/guilds").await {
        Ok(g) => g,
        Err(f) => return fail(f),
    };
    let rows = guilds["guilds"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| GuildRow {
                    id: g["id"].as_str().unwrap_or_default().to_owned(),
                    name: g["name"].as_str().unwrap_or_default().to_owned(),
                    present: g["beacon_present"].as_bool().unwrap_or(false),
                    read_only: g["access"] == "read_only",
                })
                .collect()
        })
        .unwrap_or_default();
    html(StatusCode::OK, &Guilds { layout, rows })
}

fn setup_steps(state: &PagesState) -> Vec<Step> {
    let app = &state.app;
    let intents = app.intents();
    let mut privileged = Vec::new();
    if intents.contains(twilight_model::gateway::Intents::MESSAGE_CONTENT) {
        privileged.push("Message Content Intent");
    }
    if intents.contains(twilight_model::gateway::Intents::GUILD_MEMBERS) {
        privileged.push("Server Members Intent");
    }
    if intents.contains(twilight_model::gateway::Intents::GUILD_PRESENCES) {
        privileged.push("Presence Intent");
    }
    let invite = app.config.discord.application_id.map(|id| app.invite_url(id));
    let invite_text = match &invite {
        Some(_) => "This link asks only for the permissions the enabled modules need.".to_owned(),
        None => format!(
            "Once BEACON_DISCORD_APPLICATION_ID is set, the invite link appears here. It asks only for the \
             permissions the enabled modules need (permission bits {}).",
            app.permissions().bits()
        ),
    };
    vec![
        Step {
            title: "Create the Discord application".into(),
            text: "In Discord's developer portal, choose “New Application” and give it a name. On its General \
                   Information page, copy the Application ID and the Public Key into Beacon's settings:"
                .into(),
            code: vec!["BEACON_DISCORD_APPLICATION_ID=…".into(), "BEACON_DISCORD_PUBLIC_KEY=…".into()],
            href: "https://discord.com/developers/applications".into(),
            link_label: "Open the developer portal".into(),
        },
        Step {
            title: "Paste the bot token".into(),
            text: "On the Bot page, choose “Reset Token”, copy it, and put it in the environment (or in a file \
                   named by BEACON_DISCORD_TOKEN_FILE). Then restart Beacon. The token is a password: never share it."
                .into(),
            code: vec!["BEACON_DISCORD_TOKEN=…".into()],
            href: String::new(),
            link_label: String::new(),
        },
        Step {
            title: "Turn on the intents Beacon needs".into(),
            text: if privileged.is_empty() {
                "The enabled modules need no privileged intent.".into()
            } else {
                format!("Still on the Bot page, under Privileged Gateway Intents, turn on: {}.", privileged.join(", "))
            },
            code: Vec::new(),
            href: String::new(),
            link_label: String::new(),
        },
        Step {
            title: "Invite Beacon to your server".into(),
            text: invite_text,
            code: Vec::new(),
            link_label: "Invite Beacon".into(),
            href: invite.unwrap_or_default(),
        },
        Step {
            title: "Let admins log in here".into(),
            text: format!(
                "On the OAuth2 page, copy the Client Secret into BEACON_OAUTH_CLIENT_SECRET and add this redirect: \
                 {}/api/v1/auth/callback",
                app.public_url()
            ),
            code: vec!["BEACON_OAUTH_CLIENT_SECRET=…".into()],
            href: String::new(),
            link_label: String::new(),
        },
    ]
}

/// `POST /logout`: ends the session (through the API, which revokes Discord's grant).
pub async fn logout(State(state): State<PagesState>, headers: HeaderMap, Form(form): Form<Fields>) -> Response {
    let api = state.api(&headers);
    let csrf = first(&form, "_csrf").unwrap_or_default();
    match api.send(Method::POST, "/api/v1/auth/logout", None, csrf).await {
        Ok(answer) => {
            let mut resp = see_other("/");
            for c in answer.set_cookies {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(f) => fail(f),
    }
}

/// `GET /g?guild=…`: the server switcher without JavaScript.
pub async fn switch(Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("guild").and_then(|g| g.parse::<u64>().ok()) {
        Some(id) => see_other(&format!("/g/{id}/settings")),
        None => see_other("/"),
    }
}

/// `GET /g/{guild_id}`: its settings.
pub async fn guild_home(Path(guild): Path<String>) -> Response {
    match parse_guild(&guild) {
        Some(id) => see_other(&format!("/g/{id}/settings")),
        None => see_other("/"),
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    modules: Vec<ModuleSwitch>,
    groups: Vec<Group>,
    audit: Vec<AuditRow>,
    /// A change of the history was made by no member (explained under the table).
    has_system: bool,
}

struct ModuleSwitch {
    name: String,
    description: String,
    enabled: bool,
    can_disable: bool,
}

struct Group {
    name: String,
    keys: String,
    settings: Vec<SettingField>,
    /// A field of the group was refused: it starts unfolded.
    open: bool,
}

struct Opt {
    value: String,
    label: String,
    selected: bool,
}

/// One setting's control.
struct SettingField {
    key: String,
    id: String,
    help: String,
    /// `bool`, `int`, `duration`, `text`, `select`, `multi`, `lines`.
    control: &'static str,
    value: String,
    checked: bool,
    min: String,
    max: String,
    hint: String,
    options: Vec<Opt>,
    error: Option<String>,
}

struct AuditRow {
    id: i64,
    key: String,
    old: String,
    new: String,
    /// The member's name, or their id when Discord does not know them here.
    actor: String,
    /// Made by no member: Beacon itself (or an author since erased).
    system: bool,
    at: String,
    reverted: bool,
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn duration_text(v: &Value) -> String {
    v.as_u64().map(|s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string()).unwrap_or_default()
}

/// The picker options of a channel or role setting, from the guild's directory.
fn picks(directory: &Value, kind: &str, chosen: &[String], none: bool) -> Vec<Opt> {
    let (list, prefix) = if kind == "channel" { ("channels", "#") } else { ("roles", "@") };
    let mut out = Vec::new();
    if none {
        out.push(Opt { value: String::new(), label: "(none)".into(), selected: chosen.is_empty() });
    }
    let mut known = Vec::new();
    for item in directory[list].as_array().into_iter().flatten() {
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        let name = item["name"].as_str().unwrap_or_default();
        known.push(id.clone());
        out.push(Opt { selected: chosen.contains(&id), label: format!("{prefix}{name}"), value: id });
    }
    // A stored id Discord no longer lists stays visible (and selected) rather than silently dropped.
    for id in chosen.iter().filter(|c| !c.is_empty() && !known.contains(c)) {
        out.push(Opt { value: id.clone(), label: format!("{prefix}{id} (not found)"), selected: true });
    }
    out
}

fn field_of(s: &Value, directory: &Value, submitted: Option<&[String]>, error: Option<String>) -> SettingField {
    let key = s["key"].as_str().unwrap_or_default().to_owned();
    let schema = &s["schema"];
    let kind = schema["type"].as_str().unwrap_or("string");
    let value = &s["value"];
    // After a refused save the form shows what was typed, not what is stored.
    let raw: Vec<String> = match submitted {
        Some(v) => v.to_vec(),
        None => match (kind, value) {
            ("duration", v) => vec![duration_text(v)],
            (_, Value::Array(items)) => items.iter().map(plain).collect(),
            (_, v) => vec![plain(v)],
        },
    };
    let one = raw.first().cloned().unwrap_or_default();
    let mut f = SettingField {
        id: format!("s-{}", key.replace('.', "-")),
        help: s["help"].as_str().unwrap_or_default().to_owned(),
        control: "text",
        value: one.clone(),
        checked: false,
        min: String::new(),
        max: String::new(),
        hint: String::new(),
        options: Vec::new(),
        error,
        key,
    };
    match kind {
        "bool" => {
            f.control = "bool";
            f.checked = match submitted {
                Some(v) => v.iter().any(|x| x == "on"),
                None => value.as_bool().unwrap_or(false),
            };
        }
        "int" => {
            f.control = "int";
            f.min = schema["min"].to_string();
            f.max = schema["max"].to_string();
            f.hint = format!("A whole number from {} to {}.", f.min, f.max);
        }
        "duration" => {
            f.control = "duration";
            let secs = |k: &str| duration_text(&schema[k]);
            f.hint = format!("A duration such as 30s, 15m, 2h or 1d, from {} to {}.", secs("min"), secs("max"));
        }
        "enum" => {
            f.control = "select";
            if schema["empty_means_default"] == Value::Bool(true) {
                f.options.push(Opt { value: String::new(), label: "(default)".into(), selected: one.is_empty() });
            }
            for c in schema["choices"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                f.options.push(Opt { value: c.to_owned(), label: c.to_owned(), selected: c == one });
            }
        }
        "channel" | "role" => {
            f.control = "select";
            f.options =
                picks(directory, kind, &raw.iter().filter(|r| !r.is_empty()).cloned().collect::<Vec<_>>(), true);
        }
        "list" => match schema["items"]["type"].as_str() {
            Some(item @ ("channel" | "role")) => {
                f.control = "multi";
                f.options = picks(directory, item, &raw, false);
                f.hint = format!("Choose up to {} (Ctrl or ⌘ to pick several).", schema["max_items"]);
            }
            _ => {
                f.control = "lines";
                f.value = raw.join("\n");
                f.hint = format!("One per line, up to {}.", schema["max_items"]);
            }
        },
        _ => {
            if let Some(max) = schema["max_length"].as_u64() {
                f.hint = format!("At most {max} characters.");
            }
        }
    }
    f
}

/// A form value as the API's JSON for the setting's type; `Err` is the message shown beside it.
fn value_of(schema: &Value, raw: &[&str]) -> Result<Value, String> {
    let one = raw.first().map(|s| s.trim()).unwrap_or_default();
    match schema["type"].as_str().unwrap_or("string") {
        "bool" => Ok(json!(raw.contains(&"on"))),
        "int" => one.parse::<i64>().map(|n| json!(n)).map_err(|_| format!("“{one}” is not a whole number.")),
        "duration" => humantime::parse_duration(one)
            .map(|d| json!(d.as_secs()))
            .map_err(|_| format!("“{one}” is not a duration; write e.g. 30s, 15m, 2h or 1d.")),
        "channel" | "role" if one.is_empty() => Ok(Value::Null),
        "list" => {
            let item = &schema["items"];
            let parts: Vec<&str> = match item["type"].as_str() {
                Some("channel" | "role") => raw.iter().copied().filter(|s| !s.is_empty()).collect(),
                _ => raw.iter().flat_map(|s| s.lines()).map(str::trim).filter(|s| !s.is_empty()).collect(),
            };
            parts.iter().map(|p| value_of(item, &[*p])).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        _ => Ok(json!(one)),
    }
}

struct SettingsData {
    settings: Value,
    modules: Value,
    audit: Value,
    directory: Value,
}

async fn settings_data(g: &GuildCtx) -> Result<SettingsData, Failure> {
    Ok(SettingsData {
        settings: g.api.get(&g.api_path("/settings")).await?,
        modules: g.modules.clone(),
        audit: g.api.get(&g.api_path("/settings/audit?limit=25")).await?,
        // Pickers fall back to typed ids when Discord cannot be reached.
        directory: g.api.get(&g.api_path("/directory")).await.unwrap_or(Value::Null),
    })
}

fn settings_page(
    layout: Layout,
    data: &SettingsData,
    submitted: &HashMap<String, Vec<String>>,
    errors: &HashMap<String, String>,
) -> SettingsPage {
    let modules: Vec<ModuleSwitch> = data.modules["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| ModuleSwitch {
            name: m["name"].as_str().unwrap_or_default().to_owned(),
            description: m["description"].as_str().unwrap_or_default().to_owned(),
            enabled: m["enabled"].as_bool().unwrap_or(false),
            can_disable: m["can_disable"].as_bool().unwrap_or(false),
        })
        .collect();
    let switch_keys: Vec<String> = modules.iter().map(|m| format!("{}.enabled", m.name)).collect();
    let mut groups: BTreeMap<String, Vec<SettingField>> = BTreeMap::new();
    for s in data.settings["settings"].as_array().into_iter().flatten() {
        let key = s["key"].as_str().unwrap_or_default();
        if switch_keys.iter().any(|k| k == key) {
            continue;
        }
        let module = s["module"].as_str().unwrap_or_default().to_owned();
        let field = field_of(s, &data.directory, submitted.get(key).map(Vec::as_slice), errors.get(key).cloned());
        groups.entry(module).or_default().push(field);
    }
    let groups = groups
        .into_iter()
        .map(|(name, settings)| Group {
            keys: settings.iter().map(|s| s.key.as_str()).collect::<Vec<_>>().join(","),
            open: settings.iter().any(|s| s.error.is_some()),
            name,
            settings,
        })
        .collect();
    // Channel and role settings in the history show #channel and @role, not their ids.
    let kinds: HashMap<&str, &'static str> = data.settings["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let schema = &s["schema"];
            let kind = match schema["type"].as_str() {
                Some("list") => schema["items"]["type"].as_str(),
                other => other,
            };
            let kind = match kind {
                Some("channel") => "channel",
                Some("role") => "role",
                _ => return None,
            };
            Some((s["key"].as_str()?, kind))
        })
        .collect();
    let picked = |key: &Value| key.as_str().and_then(|k| kinds.get(k).copied());
    let audit: Vec<AuditRow> = data.audit["audit"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| AuditRow {
            id: a["id"].as_i64().unwrap_or_default(),
            key: a["key"].as_str().unwrap_or_default().to_owned(),
            old: show_named(&a["old"], picked(&a["key"]), &data.directory),
            new: show_named(&a["new"], picked(&a["key"]), &data.directory),
            actor: a["actor_name"].as_str().or(a["actor_id"].as_str()).unwrap_or_default().to_owned(),
            system: a["actor_id"].as_str() == Some("0"),
            at: a["at"].as_i64().map(time).unwrap_or_default(),
            reverted: !a["reverted_audit_id"].is_null(),
        })
        .collect();
    let has_system = audit.iter().any(|a| a.system);
    SettingsPage { layout, modules, groups, audit, has_system }
}

/// A value of the history: a channel or role setting's ids as `#name` / `@name` from the guild's
/// directory (the id when Discord does not list it), anything else as [`show_setting`].
fn show_named(v: &Value, kind: Option<&str>, directory: &Value) -> String {
    let Some(kind) = kind.filter(|_| !v.is_null()) else { return show_setting(v) };
    let (list, prefix) = if kind == "channel" { ("channels", "#") } else { ("roles", "@") };
    let name = |id: &Value| {
        let id = plain(id);
        let found = directory[list].as_array().into_iter().flatten().find(|i| i["id"].as_str() == Some(id.as_str()));
        match found.and_then(|i| i["name"].as_str()) {
            Some(name) => format!("{prefix}{name}"),
            None => format!("{prefix}{id}"),
        }
    };
    match v {
        Value::Array(ids) if ids.is_empty() => "(none)".to_owned(),
        Value::Array(ids) => ids.iter().map(name).collect::<Vec<_>>().join(", "),
        Value::String(s) if s.is_empty() => "(none)".to_owned(),
        one => name(one),
    }
}

fn show_setting(v: &Value) -> String {
    match v {
        Value::Null => "(default)".into(),
        other => plain(other),
    }
}

/// `GET /g/{guild_id}/settings`.
pub async fn settings(
    State(state): State<PagesState>,
    g: GuildCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let layout = match Layout::guild(&state, &g, "settings", "Settings").await {
        Ok(l) => l.with_done(q.get("done").map(String::as_str)),
        Err(f) => return fail(f),
    };
    match settings_data(&g).await {
        Ok(data) => html(StatusCode::OK, &settings_page(layout, &data, &HashMap::new(), &HashMap::new())),
        Err(f) => fail(f),
    }
}

/// `POST /g/{guild_id}/settings`: one module's group; only changed values are sent, all at
/// once (the API stores all or nothing); a refused value is shown beside its field with what
/// was typed kept.
pub async fn save_settings(State(state): State<PagesState>, g: GuildCtx, Form(form): Form<Fields>) -> Response {
    let data = match settings_data(&g).await {
        Ok(d) => d,
        Err(f) => return fail(f),
    };
    let SettingsForm { keys, changes, mut errors, submitted } = settings_form(&data.settings, &form);
    if errors.is_empty() && changes.is_empty() {
        return see_other(&with_done(&g.page("settings"), "nothing"));
    }
    if errors.is_empty() {
        let csrf = first(&form, "_csrf").unwrap_or_default();
        let path = g.api_path("/settings");
        match g.api.send(Method::PATCH, &path, Some(Value::Object(changes)), csrf).await {
            Ok(_) => return see_other(&with_done(&g.page("settings"), "saved")),
            Err(f) => match f.field.clone() {
                Some(field) if keys.contains(&field) => {
                    errors.insert(field, f.message);
                }
                _ => return fail(f),
            },
        }
    }
    let mut layout = match Layout::guild(&state, &g, "settings", "Settings").await {
        Ok(l) => l,
        Err(f) => return fail(f),
    };
    layout.flash = Some(Flash { text: "Nothing was saved: fix the fields marked below.".into(), error: true });
    html(StatusCode::UNPROCESSABLE_ENTITY, &settings_page(layout, &data, &submitted, &errors))
}

/// A posted settings form read against the settings API's answer (`{"settings": [{key, schema,
/// value}]}`): the keys the form says it shows (`_keys`), the changed values as the API's JSON,
/// a message per refused field, and what was submitted (shown again beside a refused field).
#[derive(Debug, Default, PartialEq)]
pub struct SettingsForm {
    /// The keys the form showed.
    pub keys: Vec<String>,
    /// Changed values, as the `PATCH …/settings` body.
    pub changes: serde_json::Map<String, Value>,
    /// The message beside each refused field.
    pub errors: HashMap<String, String>,
    /// The raw values of each shown field.
    pub submitted: HashMap<String, Vec<String>>,
}

/// Reads a posted settings form (see [`SettingsForm`]); never fails: a bad value is a message
/// beside its field.
pub fn settings_form(settings: &Value, form: &[(String, String)]) -> SettingsForm {
    let keys: Vec<String> =
        first(form, "_keys").unwrap_or_default().split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect();
    let mut out = SettingsForm { keys, ..SettingsForm::default() };
    for s in settings["settings"].as_array().into_iter().flatten() {
        let Some(key) = s["key"].as_str().filter(|k| out.keys.iter().any(|x| x == k)) else { continue };
        let raw = all(form, key);
        out.submitted.insert(key.to_owned(), raw.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>());
        match value_of(&s["schema"], &raw) {
            Ok(v) if v != s["value"] => {
                out.changes.insert(key.to_owned(), v);
            }
            Ok(_) => {}
            Err(message) => {
                out.errors.insert(key.to_owned(), message);
            }
        }
    }
    out
}

/// `POST /g/{guild_id}/settings/revert/{audit_id}`.
pub async fn revert(g: GuildCtx, Path((_, audit)): Path<(String, String)>, Form(form): Form<Fields>) -> Response {
    let back = g.page("settings");
    let Ok(audit) = audit.parse::<i64>() else { return see_other(&back) };
    let path = g.api_path(&format!("/settings/audit/{audit}/revert"));
    post_then(&g.api, Method::POST, &path, None, first(&form, "_csrf").unwrap_or_default(), &back, "reverted").await
}

/// `POST /g/{guild_id}/modules/{module}`: a module switch.
pub async fn switch_module(
    g: GuildCtx,
    Path((_, module)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> Response {
    let back = g.page("settings");
    let Some(path) = beacon_framework::pages::fill("/modules/{m}", &[("m".into(), module)]) else {
        return see_other(&back);
    };
    let body = json!({ "enabled": first(&form, "enabled") == Some("true") });
    let csrf = first(&form, "_csrf").unwrap_or_default();
    post_then(&g.api, Method::PUT, &g.api_path(&path), Some(body), csrf, &back, "module").await
}

// ---------------------------------------------------------------------------------------------
// Access

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    layout: Layout,
    users: Vec<AccessRow>,
    query: String,
    found: Vec<Member>,
    searched: bool,
    search_error: Option<String>,
}

struct AccessRow {
    user_id: String,
    /// The member's name, or their id when Discord does not know them here.
    name: String,
    granted_by: String,
    granted_at: String,
}

struct Member {
    id: String,
    username: String,
    display_name: String,
}

/// `GET /g/{guild_id}/access[?q=name]`: authorized users, and members found by name to grant.
pub async fn access(
    State(state): State<PagesState>,
    g: GuildCtx,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let layout = match Layout::guild(&state, &g, "access", "Access").await {
        Ok(l) => l.with_done(q.get("done").map(String::as_str)),
        Err(f) => return fail(f),
    };
    let users = match g.api.get(&g.api_path("/authorized-users")).await {
        Ok(u) => u,
        Err(f) => return fail(f),
    };
    let users = users["authorized_users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| AccessRow {
            user_id: u["user_id"].as_str().unwrap_or_default().to_owned(),
            name: u["name"].as_str().or(u["user_id"].as_str()).unwrap_or_default().to_owned(),
            granted_by: u["granted_by_name"].as_str().or(u["granted_by"].as_str()).unwrap_or("—").to_owned(),
            granted_at: u["granted_at"].as_i64().map(time).unwrap_or_default(),
        })
        .collect();
    let query = q.get("q").map(|s| s.trim().to_owned()).unwrap_or_default();
    let (mut found, mut search_error) = (Vec::new(), None);
    if !query.is_empty() {
        let path = g.api_path(&format!("/directory?members={}", encode(&query)));
        match g.api.get(&path).await {
            Ok(d) => {
                found = d["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| Member {
                        id: m["id"].as_str().unwrap_or_default().to_owned(),
                        username: m["username"].as_str().unwrap_or_default().to_owned(),
                        display_name: m["display_name"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            }
            Err(f) => search_error = Some(f.message),
        }
    }
    let page = AccessPage { layout, users, searched: !query.is_empty(), query, found, search_error };
    html(StatusCode::OK, &page)
}

/// Percent-encoding for a query value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /g/{guild_id}/access`: grants access to `user_id`.
pub async fn grant(g: GuildCtx, Form(form): Form<Fields>) -> Response {
    let back = g.page("access");
    let user = first(&form, "user_id").unwrap_or_default().trim().to_owned();
    let Some(path) = beacon_framework::pages::fill("/authorized-users/{u}", &[("u".into(), user)]) else {
        return see_other(&back);
    };
    let csrf = first(&form, "_csrf").unwrap_or_default();
    post_then(&g.api, Method::PUT, &g.api_path(&path), None, csrf, &back, "granted").await
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm {
    layout: Layout,
    question: String,
    action: String,
    button: String,
    back: String,
}

/// `GET /g/{guild_id}/access/{user_id}/revoke`: asks first.
pub async fn confirm_revoke(
    State(state): State<PagesState>,
    g: GuildCtx,
    Path((_, user)): Path<(String, String)>,
) -> Response {
    let Ok(user) = user.parse::<u64>() else { return see_other(&g.page("access")) };
    let layout = match Layout::guild(&state, &g, "access", "Revoke access").await {
        Ok(l) => l,
        Err(f) => return fail(f),
    };
    let users = g.api.get(&g.api_path("/authorized-users")).await.unwrap_or(Value::Null);
    let name = users["authorized_users"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["user_id"].as_str() == Some(user.to_string().as_str()))
        .and_then(|u| u["name"].as_str().map(str::to_owned));
    let page = Confirm {
        layout,
        question: format!(
            "Take Beacon access away from {}? They can no longer change Beacon here.",
            name.unwrap_or_else(|| format!("user {user}"))
        ),
        action: g.page(&format!("access/{user}/revoke")),
        button: "Revoke access".into(),
        back: g.page("access"),
    };
    html(StatusCode::OK, &page)
}

/// `POST /g/{guild_id}/access/{user_id}/revoke`.
pub async fn revoke(g: GuildCtx, Path((_, user)): Path<(String, String)>, Form(form): Form<Fields>) -> Response {
    let back = g.page("access");
    let Ok(user) = user.parse::<u64>() else { return see_other(&back) };
    let path = g.api_path(&format!("/authorized-users/{user}"));
    post_then(&g.api, Method::DELETE, &path, None, first(&form, "_csrf").unwrap_or_default(), &back, "revoked").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_form_changes_only_shown_valid_fields_and_names_the_bad_one() {
        let settings = json!({"settings": [
            {"key": "a.n", "schema": {"type": "int"}, "value": 1},
            {"key": "a.d", "schema": {"type": "duration"}, "value": 60},
            {"key": "a.hidden", "schema": {"type": "int"}, "value": 1},
        ]});
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let read =
            settings_form(&settings, &pairs(&[("_keys", "a.n,a.d"), ("a.n", "5"), ("a.d", "1m"), ("a.hidden", "9")]));
        assert_eq!(read.changes, json!({"a.n": 5}).as_object().cloned().unwrap_or_default());
        assert!(read.errors.is_empty());
        let read = settings_form(&settings, &pairs(&[("_keys", "a.n,a.d"), ("a.n", "5"), ("a.d", "soon")]));
        assert_eq!(read.errors.keys().collect::<Vec<_>>(), vec!["a.d"]);
        assert_eq!(read.submitted["a.d"], vec!["soon".to_owned()]);
        // Junk never fails: no keys, no settings.
        assert_eq!(settings_form(&json!("x"), &pairs(&[("_keys", ",,,")])), SettingsForm::default());
    }

    #[test]
    fn form_values_become_the_settings_json_or_a_message() {
        let int = json!({"type": "int", "min": 0, "max": 100});
        assert_eq!(value_of(&int, &["42"]), Ok(json!(42)));
        assert!(value_of(&int, &["forty"]).is_err_and(|m| m.contains("not a whole number")));
        let duration = json!({"type": "duration", "min": 1, "max": 86400});
        assert_eq!(value_of(&duration, &["15m"]), Ok(json!(900)));
        assert!(value_of(&duration, &["soon"]).is_err());
        assert_eq!(value_of(&json!({"type": "bool"}), &[]), Ok(json!(false)));
        assert_eq!(value_of(&json!({"type": "bool"}), &["on"]), Ok(json!(true)));
        assert_eq!(value_of(&json!({"type": "channel"}), &[""]), Ok(Value::Null));
        let roles = json!({"type": "list", "items": {"type": "role"}, "max_items": 5});
        assert_eq!(value_of(&roles, &["1", "2"]), Ok(json!(["1", "2"])));
        let words = json!({"type": "list", "items": {"type": "string"}, "max_items": 5});
        assert_eq!(value_of(&words, &["a\n b \n\n"]), Ok(json!(["a", "b"])));
    }

    #[test]
    fn the_history_names_channels_and_roles() {
        let directory =
            json!({"channels": [{"id": "10", "name": "support"}], "roles": [{"id": "20", "name": "staff"}]});
        assert_eq!(show_named(&json!("10"), Some("channel"), &directory), "#support");
        assert_eq!(show_named(&json!(["20", "21"]), Some("role"), &directory), "@staff, @21", "unknown: the id");
        assert_eq!(show_named(&Value::Null, Some("role"), &directory), "(default)");
        assert_eq!(show_named(&json!([]), Some("role"), &directory), "(none)");
        assert_eq!(show_named(&json!(60), None, &directory), "60");
    }

    #[test]
    fn each_type_gets_its_control_and_a_refused_value_is_kept() {
        let directory =
            json!({"channels": [{"id": "10", "name": "support"}], "roles": [{"id": "20", "name": "staff"}]});
        let setting =
            |schema: Value, value: Value| json!({"key": "m.k", "schema": schema, "value": value, "help": "h"});
        let f = field_of(&setting(json!({"type": "channel"}), json!("10")), &directory, None, None);
        assert_eq!(f.control, "select");
        assert!(f.options.iter().any(|o| o.value == "10" && o.selected && o.label == "#support"));
        let f = field_of(
            &setting(json!({"type": "list", "items": {"type": "role"}, "max_items": 3}), json!(["99"])),
            &directory,
            None,
            None,
        );
        assert_eq!(f.control, "multi");
        assert!(f.options.iter().any(|o| o.value == "99" && o.selected), "an unknown stored id stays visible");
        let f =
            field_of(&setting(json!({"type": "duration", "min": 60, "max": 3600}), json!(900)), &directory, None, None);
        assert_eq!((f.control, f.value.as_str()), ("duration", "15m"));
        let typed = vec!["1000".to_owned()];
        let f = field_of(
            &setting(json!({"type": "int", "min": 0, "max": 100}), json!(45)),
            &directory,
            Some(&typed),
            Some("too big".into()),
        );
        assert_eq!((f.value.as_str(), f.error.as_deref()), ("1000", Some("too big")));
    }
}
