//! Module pages: each [`PageSpec`] a module declares is rendered here from its own API routes,
//! read with the caller's session (so a page shows what the API allows them and nothing else).
//! On a fresh install (no bot token yet) the modules' search sections — the knowledge-base
//! playground — run on the local knowledge base that `beacon ingest` fills (guild 0).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use beacon_framework::pages::{Field, PageSpec, Section, fill, match_slug, params_of};
use beacon_framework::{Access, ApiGuild};
use serde_json::Value;
use tower::ServiceExt;

use super::chart;
use super::core::encode;
use super::view::{Layout, at, fail, show};
use super::{Failure, PagesState, html, see_other};

/// The local knowledge base of `beacon ingest` and `beacon ask` (their default guild).
pub const LOCAL_GUILD: u64 = 0;

/// A section ready for the template (one flat shape; `kind` says which parts are used).
#[derive(Default)]
pub struct SectionView {
    pub kind: &'static str,
    pub index: usize,
    pub title: String,
    pub error: Option<String>,
    pub headers: Vec<String>,
    pub rows: Vec<RowView>,
    pub filters: Vec<FilterView>,
    pub empty: String,
    pub items: Vec<(String, String)>,
    pub param: String,
    pub label: String,
    pub query: String,
    pub searched: bool,
    pub cards: Vec<Card>,
    pub svg: String,
    pub help: String,
    pub follow: bool,
    pub action_label: String,
}

pub struct RowView {
    pub cells: Vec<(String, String)>,
    /// Where the first cell links to (empty: no link) and the link's label.
    pub href: String,
    pub link_label: String,
    pub fields: Vec<(String, String)>,
}

pub struct FilterView {
    pub param: String,
    pub label: String,
    pub value: String,
    pub choices: Vec<(String, bool)>,
}

pub struct Card {
    pub heading: String,
    pub body: String,
    pub items: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "module_page.html")]
struct ModulePage {
    layout: Layout,
    intro: String,
    action: String,
    sections: Vec<SectionView>,
}

fn items(v: &Value, fields: &[Field]) -> Vec<(String, String)> {
    fields.iter().map(|f| (f.label.to_owned(), show(at(v, f.path), f.format))).collect()
}

/// Builds the view of one section from the API's answer (`Err`: the API's message is shown in
/// the section, the rest of the page still works).
fn render(
    index: usize,
    section: &Section,
    answer: Option<Result<&Value, &Failure>>,
    query: &HashMap<String, String>,
    guild: u64,
) -> SectionView {
    let mut v = SectionView { index, ..SectionView::default() };
    let data = match answer {
        Some(Ok(d)) => Some(d),
        Some(Err(f)) => {
            v.error = Some(f.message.clone());
            None
        }
        None => None,
    };
    let null = Value::Null;
    let data_or_null = data.unwrap_or(&null);
    match section {
        Section::Table { title, list, columns, filters, link, action, empty, .. } => {
            v.kind = "table";
            v.title = (*title).to_owned();
            v.empty = (*empty).to_owned();
            v.headers = columns.iter().map(|c| c.label.to_owned()).collect();
            v.filters = filters
                .iter()
                .map(|f| {
                    let value = query.get(f.param).cloned().unwrap_or_default();
                    FilterView {
                        param: f.param.to_owned(),
                        label: f.label.to_owned(),
                        choices: f.choices.iter().map(|c| ((*c).to_owned(), *c == value)).collect(),
                        value,
                    }
                })
                .collect();
            if let Some(a) = action {
                v.action_label = a.label.to_owned();
            }
            v.rows = at(data_or_null, list)
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| {
                    let row_params = |template: &str| -> Vec<(String, String)> {
                        params_of(template)
                            .iter()
                            .map(|p| ((*p).to_owned(), show(&row[*p], beacon_framework::pages::Format::Text)))
                            .collect()
                    };
                    let (href, link_label) = link
                        .and_then(|l| {
                            fill(l.page, &row_params(l.page)).map(|p| (format!("/g/{guild}/p/{p}"), l.label.to_owned()))
                        })
                        .unwrap_or_default();
                    RowView {
                        cells: items(row, columns),
                        href,
                        link_label,
                        fields: action.map(|a| row_params(a.api)).unwrap_or_default(),
                    }
                })
                .collect();
        }
        Section::Record { title, fields, .. } => {
            v.kind = "record";
            v.title = (*title).to_owned();
            if let Some(d) = data {
                v.items = items(d, fields);
            }
        }
        Section::Search { title, param, label, list, heading, body, fields, summary, .. } => {
            v.kind = "search";
            v.title = (*title).to_owned();
            v.param = (*param).to_owned();
            v.label = (*label).to_owned();
            v.query = query.get(*param).cloned().unwrap_or_default();
            v.searched = data.is_some();
            if let Some(d) = data {
                v.items = items(d, summary);
                v.cards = at(d, list)
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Card {
                        heading: show(at(p, heading), beacon_framework::pages::Format::Text),
                        body: show(at(p, body), beacon_framework::pages::Format::Text),
                        items: items(p, fields),
                    })
                    .collect();
            }
        }
        Section::Bars { title, list, label, value, limit, columns, .. } => {
            v.kind = "bars";
            v.title = (*title).to_owned();
            let rows: Vec<&Value> = at(data_or_null, list).as_array().into_iter().flatten().collect();
            let points: Vec<(String, f64)> = rows
                .iter()
                .map(|r| {
                    (
                        show(at(r, label), beacon_framework::pages::Format::Text),
                        at(r, value.path).as_f64().unwrap_or(0.0),
                    )
                })
                .collect();
            let limit = limit.and_then(|l| at(data_or_null, l).as_f64());
            let format = value.format;
            v.svg = chart::bars(title, &points, limit, |x| show(&serde_json::json!(x), format));
            let mut headers = vec!["".to_owned()];
            headers.extend(columns.iter().map(|c| c.label.to_owned()));
            v.headers = headers;
            v.rows = rows
                .iter()
                .map(|r| {
                    let mut cells = vec![(String::new(), show(at(r, label), beacon_framework::pages::Format::Text))];
                    cells.extend(items(r, columns));
                    RowView { cells, href: String::new(), link_label: String::new(), fields: Vec::new() }
                })
                .collect();
        }
        Section::Action { label, help, follow_url, .. } => {
            v.kind = "action";
            v.action_label = (*label).to_owned();
            v.help = (*help).to_owned();
            v.follow = *follow_url;
        }
    }
    v
}

/// A module page found by its slug: the module's name, the page and the slug's parameters.
type Found<'a> = (&'static str, &'a PageSpec, Vec<(String, String)>);

fn find<'a>(state: &'a PagesState, slug: &str) -> Option<Found<'a>> {
    state.pages.iter().find_map(|(m, p)| match_slug(p.slug, slug).map(|params| (*m, p, params)))
}

fn not_found(message: &str) -> Response {
    fail(Failure { status: StatusCode::NOT_FOUND, code: "not_found".into(), message: message.into(), field: None })
}

/// The API path a section reads, with the page's filters or question.
fn section_path(
    guild: u64,
    section: &Section,
    params: &[(String, String)],
    query: &HashMap<String, String>,
) -> Option<String> {
    let (api, passed): (&str, Vec<&str>) = match section {
        Section::Table { api, filters, .. } => (*api, filters.iter().map(|f| f.param).collect()),
        Section::Record { api, .. } | Section::Bars { api, .. } => (*api, Vec::new()),
        Section::Search { api, param, .. } => {
            query.get(*param).filter(|q| !q.trim().is_empty())?;
            (*api, vec![*param])
        }
        Section::Action { .. } => return None,
    };
    let path = fill(api, params)?;
    let qs: Vec<String> = passed
        .iter()
        .filter_map(|p| query.get(*p).filter(|v| !v.trim().is_empty()).map(|v| format!("{p}={}", encode(v.trim()))))
        .collect();
    let sep = if qs.is_empty() { "" } else { "?" };
    Some(format!("/api/v1/guilds/{guild}{path}{sep}{}", qs.join("&")))
}

/// `GET /g/{guild_id}/p/{slug}`: a module's page.
pub async fn page(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Path((guild, slug)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(guild) = guild.parse::<u64>().ok().filter(|g| *g > 0) else {
        return not_found("There is no such server.");
    };
    let Some((module, spec, params)) = find(&state, &slug) else { return not_found("There is no such page.") };
    let api = state.api(&headers);
    let nav_slug = spec.slug.split('/').next().unwrap_or(spec.slug);
    let mut layout = match Layout::guild(&state, &api, guild, &format!("p/{nav_slug}"), spec.title).await {
        Ok(l) => l.with_done(query.get("done").map(String::as_str)),
        Err(f) => return fail(f),
    };
    if !layout.nav.iter().any(|n| n.href == format!("/g/{guild}/p/{nav_slug}")) {
        return not_found(&format!("The {module} module is off in this server; switch it on in Settings."));
    }
    if !params.is_empty() {
        layout.title =
            format!("{} {}", spec.title, params.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" "));
    }
    let mut answers: HashMap<String, Result<Value, Failure>> = HashMap::new();
    let mut sections = Vec::new();
    for (i, section) in spec.sections.iter().enumerate() {
        let path = section_path(guild, section, &params, &query);
        if let Some(p) = &path
            && !answers.contains_key(p)
        {
            let answer = api.get(p).await;
            if let Err(f) = &answer
                && f.status == StatusCode::UNAUTHORIZED
            {
                return fail(f.clone());
            }
            answers.insert(p.clone(), answer);
        }
        let answer = path.as_ref().and_then(|p| answers.get(p)).map(Result::as_ref);
        sections.push(render(i, section, answer, &query, guild));
    }
    let page = ModulePage { action: format!("/g/{guild}/p/{slug}"), intro: spec.intro.to_owned(), layout, sections };
    html(StatusCode::OK, &page)
}

/// `POST /g/{guild_id}/p/{slug}`: a section's action (`_section`), with the row's fields.
pub async fn act(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Path((guild, slug)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(guild) = guild.parse::<u64>().ok().filter(|g| *g > 0) else {
        return not_found("There is no such server.");
    };
    let Some((_, spec, mut params)) = find(&state, &slug) else { return not_found("There is no such page.") };
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let Some(section) = get("_section").parse::<usize>().ok().and_then(|i| spec.sections.get(i)) else {
        return see_other(&format!("/g/{guild}/p/{slug}"));
    };
    let (template, follow) = match section {
        Section::Action { api, follow_url, .. } => (*api, *follow_url),
        Section::Table { action: Some(a), .. } => {
            for p in params_of(a.api) {
                if !params.iter().any(|(k, _)| k == p) {
                    params.push((p.to_owned(), get(p)));
                }
            }
            (a.api, false)
        }
        _ => return see_other(&format!("/g/{guild}/p/{slug}")),
    };
    let Some(path) = fill(template, &params) else { return see_other(&format!("/g/{guild}/p/{slug}")) };
    let path = format!("/api/v1/guilds/{guild}{path}");
    let api = state.api(&headers);
    if follow {
        return match api.get(&path).await {
            Ok(v) => match v["url"].as_str() {
                Some(url) => see_other(url),
                None => not_found("There is nothing to open yet."),
            },
            Err(f) => fail(f),
        };
    }
    match api.send(Method::POST, &path, None, &get("_csrf")).await {
        Ok(_) => see_other(&format!("/g/{guild}/p/{slug}?done=done")),
        Err(f) => fail(f),
    }
}

/// The modules' search sections (the knowledge-base playground) on the local knowledge base,
/// for the first page of a fresh install; each runs the module's own API route handler.
pub async fn local_search(state: &PagesState, question: Option<&str>) -> Vec<SectionView> {
    let mut out = Vec::new();
    for (module, spec) in state.pages.iter() {
        for section in &spec.sections {
            let Section::Search { api, param, .. } = section else { continue };
            let query: HashMap<String, String> =
                question.map(|q| HashMap::from([((*param).to_owned(), q.to_owned())])).unwrap_or_default();
            let answer = match question.filter(|q| !q.trim().is_empty()) {
                None => None,
                Some(q) => Some(local_get(state, module, api, &format!("{api}?{param}={}", encode(q.trim()))).await),
            };
            let mut view = render(out.len(), section, answer.as_ref().map(Result::as_ref), &query, LOCAL_GUILD);
            if view.searched && view.cards.is_empty() && view.error.is_none() {
                view.error =
                    Some("No passage found: put .md or .txt files in a folder and run `beacon ingest FOLDER`.".into());
            }
            out.push(view);
        }
    }
    out
}

async fn local_get(state: &PagesState, module: &str, api: &str, uri: &str) -> Result<Value, Failure> {
    let app = &state.app;
    let Some(m) = app.module_named(module) else { return Err(Failure::internal("module gone")) };
    let Some(route) = m.api_routes(app).into_iter().find(|r| r.path == api && r.method == Method::GET) else {
        return Err(Failure::internal(format!("{module} has no GET {api}")));
    };
    let router: axum::Router = axum::Router::new().route(api, route.handler);
    let mut req = match Request::builder().uri(uri).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => return Err(Failure::internal(e)),
    };
    req.extensions_mut().insert(ApiGuild {
        app: app.clone(),
        guild: app.guild(LOCAL_GUILD),
        user_id: 0,
        access: Access::Developer,
    });
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 4 * 1024 * 1024).await.map_err(Failure::internal)?;
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(json)
    } else {
        Err(Failure {
            status,
            code: json["error"]["code"].as_str().unwrap_or("error").to_owned(),
            message: json["error"]["message"].as_str().unwrap_or("The playground failed.").to_owned(),
            field: json["error"]["field"].as_str().map(str::to_owned),
        })
    }
}
