//! What every page shows around its content (the layout: user, server switcher, the guild's
//! navigation), the error page, and formatting of API values for people.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::guild::GuildCtx;
use super::{Api, CSS_PATH, Failure, HTMX_PATH, PagesState, html, see_other};

/// A server in the switcher.
pub struct GuildItem {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// A link of the guild's navigation.
pub struct NavItem {
    pub href: String,
    pub label: String,
    pub current: bool,
}

/// A message after an action.
pub struct Flash {
    pub text: String,
    pub error: bool,
}

/// The frame of every page.
pub struct Layout {
    pub title: String,
    pub css: &'static str,
    pub htmx: &'static str,
    pub user: Option<String>,
    /// The caller is of the developer team (the Shards page is theirs).
    pub developer: bool,
    pub csrf: String,
    pub guilds: Vec<GuildItem>,
    pub guild_id: String,
    pub guild_name: String,
    pub nav: Vec<NavItem>,
    pub flash: Option<Flash>,
}

impl Layout {
    /// A page outside any login (setup, login, errors).
    pub fn bare(title: &str) -> Layout {
        Layout {
            title: title.to_owned(),
            css: CSS_PATH.as_str(),
            htmx: HTMX_PATH,
            user: None,
            developer: false,
            csrf: String::new(),
            guilds: Vec::new(),
            guild_id: String::new(),
            guild_name: String::new(),
            nav: Vec::new(),
            flash: None,
        }
    }

    /// A logged-in page outside a guild.
    pub async fn user(api: &Api, title: &str) -> Result<Layout, Failure> {
        let me = api.get("/api/v1/auth/me").await?;
        let guilds = api.get("/api/v1/guilds").await?;
        let mut layout = Layout::bare(title);
        layout.user = me["user"]["username"].as_str().map(str::to_owned);
        layout.csrf = me["csrf_token"].as_str().unwrap_or_default().to_owned();
        layout.developer = me["developer"].as_bool().unwrap_or(false);
        layout.guilds = guilds["guilds"]
            .as_array()
            .map(|gs| {
                gs.iter()
                    .map(|g| GuildItem {
                        id: g["id"].as_str().unwrap_or_default().to_owned(),
                        name: g["name"].as_str().unwrap_or_default().to_owned(),
                        selected: false,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(layout)
    }

    /// A page of one guild: the switcher shows it, the navigation lists the core pages and
    /// the pages of the modules enabled there; `current` is the page's path under `/g/{id}/`.
    pub async fn guild(state: &PagesState, g: &GuildCtx, current: &str, title: &str) -> Result<Layout, Failure> {
        let modules = &g.modules;
        let mut layout = Layout::user(&g.api, title).await?;
        let id = g.id.to_string();
        for g in &mut layout.guilds {
            g.selected = g.id == id;
        }
        layout.guild_name = layout.guilds.iter().find(|g| g.selected).map(|g| g.name.clone()).unwrap_or(id.clone());
        let enabled: Vec<&str> = modules["modules"]
            .as_array()
            .map(|ms| {
                ms.iter().filter(|m| m["enabled"] == Value::Bool(true)).filter_map(|m| m["name"].as_str()).collect()
            })
            .unwrap_or_default();
        let mut nav = vec![("settings".to_owned(), "Settings".to_owned()), ("access".to_owned(), "Access".to_owned())];
        for (module, page) in state.pages.iter() {
            if enabled.contains(module) && !page.slug.contains('{') {
                nav.push((format!("p/{}", page.slug), page.title.to_owned()));
            }
        }
        layout.nav = nav
            .into_iter()
            .map(|(path, label)| NavItem {
                current: current == path || current.starts_with(&format!("{path}/")),
                href: format!("/g/{id}/{path}"),
                label,
            })
            .collect();
        layout.guild_id = id;
        Ok(layout)
    }

    /// Adds the message of a finished action (`?done=…`).
    pub fn with_done(mut self, done: Option<&str>) -> Layout {
        let text = match done {
            Some("saved") => "Saved. Beacon uses the new settings now.",
            Some("nothing") => "Nothing changed.",
            Some("reverted") => "The change was reverted.",
            Some("module") => "Module switched.",
            Some("granted") => "Access granted.",
            Some("revoked") => "Access revoked.",
            Some("done") => "Done.",
            Some("added") => "Added. Choose Sync now beside it to read it for the first time.",
            _ => return self,
        };
        self.flash = Some(Flash { text: text.to_owned(), error: false });
        self
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: &'static str,
    status: u16,
    message: String,
}

/// The answer to a failed API call: to the login when the session is gone, otherwise an error
/// page with the API's own message.
pub fn fail(f: Failure) -> Response {
    if f.status == StatusCode::UNAUTHORIZED {
        return see_other("/");
    }
    let heading = match f.status {
        StatusCode::TOO_MANY_REQUESTS => "A short pause, please",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not for you, here",
        _ => "That did not work",
    };
    let page = ErrorPage { layout: Layout::bare("Error"), heading, status: f.status.as_u16(), message: f.message };
    html(f.status, &page)
}

/// A JSON value reached by a dotted path (`budget.daily_cost_micros`); alternatives separated
/// by `|` give the first that is not null (`target_name|target_id`: the name, else the id).
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let one = |p: &str| p.split('.').fold(v, |v, k| &v[k]);
    path.split('|').map(one).find(|x| !x.is_null()).unwrap_or(&Value::Null)
}

/// A value for a person, in the field's format.
pub fn show(v: &Value, format: beacon_framework::pages::Format) -> String {
    use beacon_framework::pages::Format;
    match (v, format) {
        (Value::Null, _) => "—".to_owned(),
        (Value::Number(n), Format::Time) => n.as_i64().map_or_else(|| n.to_string(), time),
        (Value::Number(n), Format::Millis) => n.as_f64().map_or_else(
            || n.to_string(),
            |ms| humantime::format_duration(std::time::Duration::from_secs((ms / 1000.0).round() as u64)).to_string(),
        ),
        (Value::Number(n), Format::Micros) => n.as_f64().map_or_else(|| n.to_string(), |m| format!("${:.4}", m / 1e6)),
        (Value::Number(n), Format::Score) => n.as_f64().map_or_else(|| n.to_string(), |s| format!("{s:.3}")),
        (Value::String(s), _) => s.clone(),
        (Value::Bool(b), _) => (if *b { "yes" } else { "no" }).to_owned(),
        (Value::Array(items), _) => items.iter().map(|i| show(i, format)).collect::<Vec<_>>().join(", "),
        (other, _) => other.to_string(),
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM UTC`.
pub fn time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::at;
    use serde_json::json;

    #[test]
    fn a_path_reaches_into_objects_and_falls_back_to_the_next_alternative() {
        let v = json!({"budget": {"daily": 3}, "target_id": "42", "target_name": null, "mod_name": "alice"});
        assert_eq!(at(&v, "budget.daily"), &json!(3));
        assert_eq!(at(&v, "target_name|target_id"), &json!("42"), "no name: the id");
        assert_eq!(at(&v, "mod_name|mod_id"), &json!("alice"));
        assert!(at(&v, "missing|also_missing").is_null());
    }
}
