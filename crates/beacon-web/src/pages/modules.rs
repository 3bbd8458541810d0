//! Module pages: each [`PageSpec`] a module declares is rendered here from its own API routes,
//! read with the caller's session (so a page shows what the API allows them and nothing else).
//! On a fresh install (no bot token yet) the modules' search sections — the knowledge-base
//! playground — run on the local knowledge base that `beacon ingest` fills (guild 0).

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use beacon_framework::pages::{Field, Format, Input, PageSpec, Section, fill, form_json, match_slug, params_of};
use beacon_framework::{Access, ApiGuild};
use serde_json::Value;
use tower::ServiceExt;

use super::chart;
use super::core::encode;
use super::guild::{GuildCtx, post_then, with_done};
use super::markdown::to_html;
use super::view::{Flash, Layout, at, fail, show};
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
    /// Fields in Discord markdown, as safe HTML.
    pub rich: Vec<(String, String)>,
    pub param: String,
    pub label: String,
    pub query: String,
    pub searched: bool,
    pub cards: Vec<Card>,
    pub svg: String,
    pub help: String,
    pub follow: bool,
    pub action_label: String,
    /// A form's controls, its fixed values, whether it starts folded and is open.
    pub form: Vec<FormFieldView>,
    pub fixed: Vec<(String, String)>,
    pub folded: bool,
    pub open: bool,
}

pub struct FormFieldView {
    pub name: String,
    pub id: String,
    pub label: String,
    pub help: String,
    /// The input's `type`: `text`, `url` or `password`.
    pub input: &'static str,
    pub value: String,
    pub required: bool,
    pub error: Option<String>,
}

/// An API message shown beside its field, without the field's name in front (`url`: …).
fn beside_field(name: &str, message: &str) -> String {
    let short = name.rsplit('.').next().unwrap_or(name);
    let rest = message.strip_prefix(&format!("`{short}`: ")).unwrap_or(message);
    let mut chars = rest.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A refused form, shown again: its section, what was typed and the API's refusal.
pub struct Refused {
    pub section: usize,
    pub values: HashMap<String, String>,
    pub failure: Failure,
}

pub struct RowView {
    pub cells: Vec<CellView>,
    /// Where the first cell links to (empty: no link) and the link's label.
    pub href: String,
    pub link_label: String,
    pub fields: Vec<(String, String)>,
}

/// A table cell: its column's label, and its text or, for a Markdown field, its safe HTML.
pub struct CellView {
    pub label: String,
    pub text: String,
    pub markup: Option<String>,
}

impl CellView {
    fn text(label: &str, text: String) -> CellView {
        CellView { label: label.to_owned(), text, markup: None }
    }
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
    /// Where upload sections send their file.
    upload: String,
    sections: Vec<SectionView>,
}

fn items(v: &Value, fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|f| f.format != Format::Markdown)
        .map(|f| (f.label.to_owned(), show(at(v, f.path), f.format)))
        .collect()
}

/// A table row's cells: Markdown fields rendered as the playground renders its answer (raw
/// HTML in them stays text), the others as text.
fn cells(v: &Value, fields: &[Field]) -> Vec<CellView> {
    fields
        .iter()
        .map(|f| match (f.format, at(v, f.path).as_str()) {
            (Format::Markdown, Some(t)) if !t.trim().is_empty() => {
                CellView { label: f.label.to_owned(), text: String::new(), markup: Some(to_html(t)) }
            }
            (Format::Markdown, _) => CellView::text(f.label, "—".to_owned()),
            _ => CellView::text(f.label, show(at(v, f.path), f.format)),
        })
        .collect()
}

/// The markdown fields of a record as safe HTML (empty ones left out).
fn rich(v: &Value, fields: &[Field]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|f| f.format == Format::Markdown)
        .filter_map(|f| {
            at(v, f.path).as_str().filter(|t| !t.trim().is_empty()).map(|t| (f.label.to_owned(), to_html(t)))
        })
        .collect()
}

/// Builds the view of one section from the API's answer (`Err`: the API's message is shown in
/// the section, the rest of the page still works).
fn render(
    index: usize,
    section: &Section,
    answer: Option<Result<&Value, &Failure>>,
    query: &HashMap<String, String>,
    guild: u64,
    refused: Option<&Refused>,
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
                        cells: cells(row, columns),
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
                v.rich = rich(d, fields);
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
                v.rich = rich(d, summary);
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
                    let mut cells = vec![CellView::text("", show(at(r, label), Format::Text))];
                    cells.extend(self::cells(r, columns));
                    RowView { cells, href: String::new(), link_label: String::new(), fields: Vec::new() }
                })
                .collect();
        }
        Section::Form { title, help, fixed, fields, submit, folded, .. } => {
            v.kind = "form";
            v.title = (*title).to_owned();
            v.help = (*help).to_owned();
            v.action_label = (*submit).to_owned();
            v.folded = *folded;
            v.fixed = fixed.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let refused = refused.filter(|r| r.section == index);
            let mut placed = false;
            v.form = fields
                .iter()
                .map(|f| {
                    let error = refused.filter(|r| r.failure.field.as_deref() == Some(f.name)).map(|r| {
                        placed = true;
                        beside_field(f.name, &r.failure.message)
                    });
                    FormFieldView {
                        name: f.name.to_owned(),
                        id: format!("s{index}-{}", f.name.replace('.', "-")),
                        label: f.label.to_owned(),
                        help: f.help.to_owned(),
                        input: match f.input {
                            Input::Text => "text",
                            Input::Url => "url",
                            Input::Secret => "password",
                        },
                        // A secret is never sent back to the browser.
                        value: match (refused, f.input) {
                            (Some(r), Input::Text | Input::Url) => r.values.get(f.name).cloned().unwrap_or_default(),
                            _ => String::new(),
                        },
                        required: f.required,
                        error,
                    }
                })
                .collect();
            if let Some(r) = refused {
                v.open = true;
                if !placed {
                    v.error = Some(r.failure.message.clone());
                }
            }
        }
        Section::Download { label, help, .. } => {
            v.kind = "download";
            v.action_label = (*label).to_owned();
            v.help = (*help).to_owned();
        }
        Section::Upload { title, label, help, result, .. } => {
            v.kind = "upload";
            v.title = (*title).to_owned();
            v.label = (*label).to_owned();
            v.help = (*help).to_owned();
            // What the last upload did, from the redirect's query (numbers only).
            v.items = result
                .iter()
                .filter_map(|f| {
                    let n = query.get(&format!("r_{}", f.path))?;
                    n.parse::<u64>().ok().map(|n| (f.label.to_owned(), n.to_string()))
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
        Section::Action { .. } | Section::Form { .. } | Section::Download { .. } | Section::Upload { .. } => {
            return None;
        }
    };
    let path = fill(api, params)?;
    let qs: Vec<String> = passed
        .iter()
        .filter_map(|p| query.get(*p).filter(|v| !v.trim().is_empty()).map(|v| format!("{p}={}", encode(v.trim()))))
        .collect();
    let sep = if qs.is_empty() { "" } else { "?" };
    Some(format!("/api/v1/guilds/{guild}{path}{sep}{}", qs.join("&")))
}

/// `GET /g/{guild_id}/p/{slug}`: a module's page (`?_download=N`: section N's file).
pub async fn page(
    State(state): State<PagesState>,
    g: GuildCtx,
    Path((_, slug)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(index) = query.get("_download") {
        return download(&state, &g, &slug, index).await;
    }
    render_page(&state, &g, &slug, &query, None).await
}

/// The page, every section read from the API; `refused`: a form shown again with its error.
async fn render_page(
    state: &PagesState,
    g: &GuildCtx,
    slug: &str,
    query: &HashMap<String, String>,
    refused: Option<Refused>,
) -> Response {
    let Some((module, spec, params)) = find(state, slug) else { return not_found("There is no such page.") };
    let guild = g.id;
    let api = &g.api;
    let nav_slug = spec.slug.split('/').next().unwrap_or(spec.slug);
    let mut layout = match Layout::guild(state, g, &format!("p/{nav_slug}"), spec.title).await {
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
    let status = if refused.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    if refused.is_some() {
        layout.flash = Some(Flash { text: "Nothing was saved: see the message below.".into(), error: true });
    }
    let mut answers: HashMap<String, Result<Value, Failure>> = HashMap::new();
    let mut sections = Vec::new();
    for (i, section) in spec.sections.iter().enumerate() {
        let path = section_path(guild, section, &params, query);
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
        sections.push(render(i, section, answer, query, guild, refused.as_ref()));
    }
    let page = ModulePage {
        action: format!("/g/{guild}/p/{slug}"),
        upload: format!("/g/{guild}/u/{slug}"),
        intro: spec.intro.to_owned(),
        layout,
        sections,
    };
    html(status, &page)
}

/// Section `index`'s file (a CSV export), read from the API and handed to the browser.
async fn download(state: &PagesState, g: &GuildCtx, slug: &str, index: &str) -> Response {
    let Some((_, spec, params)) = find(state, slug) else { return not_found("There is no such page.") };
    let section = index.parse::<usize>().ok().and_then(|i| spec.sections.get(i));
    let Some(Section::Download { api, filename, .. }) = section else { return not_found("There is no such file.") };
    let Some(path) = fill(api, &params) else { return not_found("There is no such file.") };
    match g.api.get_raw(&g.api_path(&path)).await {
        Ok(a) => super::guild::download(&a.content_type, filename, a.bytes),
        Err(f) => fail(f),
    }
}

/// `POST /g/{guild_id}/u/{slug}`: a file of an upload section (multipart: `_csrf`,
/// `_section`, `file`), sent to the module's API as the request body.
pub async fn upload(
    State(state): State<PagesState>,
    g: GuildCtx,
    Path((_, slug)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Response {
    let Some((_, spec, params)) = find(&state, &slug) else { return not_found("There is no such page.") };
    let (mut csrf, mut index, mut file) = (String::new(), None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return fail(bad_upload(&e.body_text())),
        };
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("_section") => index = field.text().await.ok().and_then(|t| t.parse::<usize>().ok()),
            Some("file") => match field.bytes().await {
                Ok(b) => file = Some(b),
                Err(e) => return fail(bad_upload(&e.body_text())),
            },
            _ => {}
        }
    }
    let back = g.page(&format!("p/{slug}"));
    let Some(Section::Upload { api, content_type, result, .. }) = index.and_then(|i| spec.sections.get(i)) else {
        return see_other(&back);
    };
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return fail(bad_upload("Choose a file first; the one sent was empty."));
    };
    let Some(path) = fill(api, &params) else { return see_other(&back) };
    match g.api.send_file(&g.api_path(&path), content_type, file, &csrf).await {
        Ok(a) => {
            let mut to = with_done(&back, "done");
            for f in result {
                if let Some(n) = at(&a.json, f.path).as_u64() {
                    to.push_str(&format!("&r_{}={n}", f.path));
                }
            }
            see_other(&to)
        }
        Err(f) => fail(f),
    }
}

fn bad_upload(message: &str) -> Failure {
    Failure { status: StatusCode::BAD_REQUEST, code: "bad_upload".into(), message: message.to_owned(), field: None }
}

/// `POST /g/{guild_id}/p/{slug}`: a section's action (`_section`), with the row's fields.
pub async fn act(
    State(state): State<PagesState>,
    g: GuildCtx,
    Path((_, slug)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some((_, spec, mut params)) = find(&state, &slug) else { return not_found("There is no such page.") };
    let guild = g.id;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let Some(section) = get("_section").parse::<usize>().ok().and_then(|i| spec.sections.get(i)) else {
        return see_other(&format!("/g/{guild}/p/{slug}"));
    };
    let (template, follow) = match section {
        Section::Action { api, follow_url, .. } => (*api, *follow_url),
        Section::Form { api, fixed, fields, .. } => {
            let Some(path) = fill(api, &params) else { return see_other(&g.page(&format!("p/{slug}"))) };
            let body = form_json(fixed, fields, |name| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
            return match g.api.send(Method::POST, &g.api_path(&path), Some(body), &get("_csrf")).await {
                Ok(_) => see_other(&with_done(&g.page(&format!("p/{slug}")), "added")),
                Err(f) if f.status == StatusCode::UNAUTHORIZED => fail(f),
                Err(failure) => {
                    let section = get("_section").parse::<usize>().unwrap_or_default();
                    let values = form.iter().filter(|(k, _)| !k.starts_with('_')).cloned().collect();
                    let refused = Refused { section, values, failure };
                    render_page(&state, &g, &slug, &HashMap::new(), Some(refused)).await
                }
            };
        }
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
    let path = g.api_path(&path);
    if follow {
        return match g.api.get(&path).await {
            Ok(v) => match v["url"].as_str() {
                Some(url) => see_other(url),
                None => not_found("There is nothing to open yet."),
            },
            Err(f) => fail(f),
        };
    }
    post_then(&g.api, Method::POST, &path, None, &get("_csrf"), &g.page(&format!("p/{slug}")), "done").await
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
            let mut view = render(out.len(), section, answer.as_ref().map(Result::as_ref), &query, LOCAL_GUILD, None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_renders_markdown_cells_and_keeps_raw_html_as_text() {
        let section = Section::Table {
            title: "Entries",
            api: "/faq",
            list: "entries",
            columns: vec![Field::text("Question", "question"), Field::new("Answer", "answer", Format::Markdown)],
            filters: vec![],
            link: None,
            action: None,
            empty: "none",
        };
        let answer = json!({"entries": [
            {"question": "Refunds?", "answer": "**14 days** <script>alert(1)</script>"},
            {"question": "Empty?", "answer": ""},
        ]});
        let v = render(0, &section, Some(Ok(&answer)), &HashMap::new(), 1, None);
        let first = &v.rows[0].cells;
        assert_eq!(first[0].text, "Refunds?");
        let markup = first[1].markup.as_deref().expect("the answer is rendered");
        assert!(markup.contains("<strong>14 days</strong>"), "{markup}");
        assert!(!markup.contains("<script") && markup.contains("&lt;script&gt;"), "{markup}");
        let second = &v.rows[1].cells;
        assert!(second[1].markup.is_none() && second[1].text == "—", "an empty answer is a dash");
    }

    #[test]
    fn a_message_beside_its_field_does_not_repeat_the_field() {
        assert_eq!(
            beside_field("config.url", "`url`: only http:// and https:// addresses can be read, not ftp."),
            "Only http:// and https:// addresses can be read, not ftp."
        );
        assert_eq!(beside_field("name", "name must be 1 to 64 characters."), "Name must be 1 to 64 characters.");
    }
}
