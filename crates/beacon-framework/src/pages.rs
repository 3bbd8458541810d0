//! The dashboard's contract with modules: a module describes its pages as data
//! ([`PageSpec`]: sections that read the module's own web API routes), and `beacon-web`
//! renders them in its layout. A page reads only through `/api/v1/guilds/{guild_id}/…`, so it
//! sees what the caller may see through the API and nothing else — one rule, two doors.
//!
//! Paths in a section are API paths relative to the guild (`/tickets`); `{field}` in a link
//! is filled from the row it belongs to.

/// One page of the dashboard, listed in a guild's navigation.
#[derive(Debug, Clone)]
pub struct PageSpec {
    /// The URL segment (`/g/{guild_id}/p/{slug}`); unique across modules.
    pub slug: &'static str,
    /// The navigation label and heading.
    pub title: &'static str,
    /// One sentence under the heading.
    pub intro: &'static str,
    /// What the page shows, top to bottom.
    pub sections: Vec<Section>,
}

/// A column of a table or a line of a record: a label and the JSON field shown.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The heading a person reads.
    pub label: &'static str,
    /// The field of the row (`a.b` reaches into objects; `a|b`: `a`, or `b` when `a` is null —
    /// a member's name, else their id).
    pub path: &'static str,
    /// How the value is shown.
    pub format: Format,
}

impl Field {
    /// A field shown as text.
    pub const fn text(label: &'static str, path: &'static str) -> Field {
        Field { label, path, format: Format::Text }
    }

    /// A field shown in a format.
    pub const fn new(label: &'static str, path: &'static str, format: Format) -> Field {
        Field { label, path, format }
    }
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// As it is.
    Text,
    /// Unix milliseconds as a UTC date and time.
    Time,
    /// Milliseconds as a duration.
    Millis,
    /// Micro-dollars as dollars.
    Micros,
    /// A number with three decimals (scores).
    Score,
    /// Discord markdown, rendered as safe HTML (raw HTML in it stays text).
    Markdown,
}

/// A link from a row: the label and the guild-relative page path, `{field}` filled from the row.
#[derive(Debug, Clone, Copy)]
pub struct RowLink {
    /// The text of the link.
    pub label: &'static str,
    /// A page path under `/g/{guild_id}/p/` (e.g. `tickets/{number}`).
    pub page: &'static str,
}

/// A button on each row of a table: `POST api` (a change, CSRF-checked), `{field}` filled from the row.
#[derive(Debug, Clone, Copy)]
pub struct RowAction {
    /// The button's text.
    pub label: &'static str,
    /// The guild-relative API path.
    pub api: &'static str,
}

/// A filter of a table or a search: a query parameter with its label and, for a choice, its values.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// The API's query parameter.
    pub param: &'static str,
    /// Its label.
    pub label: &'static str,
    /// The allowed values (a select); empty: free text.
    pub choices: &'static [&'static str],
}

/// A control of a [`Section::Form`].
#[derive(Debug, Clone, Copy)]
pub struct FormField {
    /// The JSON field it fills; `a.b` fills `{"a": {"b": …}}` (the API's error names the same path).
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// One sentence under it.
    pub help: &'static str,
    /// What kind of control.
    pub input: Input,
    /// Whether the API requires it (the browser asks for it before sending).
    pub required: bool,
}

/// The control of a [`FormField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// One line of text.
    Text,
    /// An address (`https://…`).
    Url,
    /// A secret: never shown again, not even after a refused form.
    Secret,
}

/// One part of a page. Every `api` is a GET route of the module's own API (relative to the
/// guild), `{name}` filled from the page's path; `list`, `label` and field paths reach into its
/// JSON answer.
#[derive(Debug, Clone)]
pub enum Section {
    /// A table of the rows at `list` in the answer of `GET api`, with filters passed through.
    Table {
        /// The section's heading.
        title: &'static str,
        /// The route read.
        api: &'static str,
        /// Where the rows are in its answer.
        list: &'static str,
        /// The columns.
        columns: Vec<Field>,
        /// Query parameters offered as filters.
        filters: Vec<Filter>,
        /// A link from each row's first cell to another page.
        link: Option<RowLink>,
        /// A button on each row.
        action: Option<RowAction>,
        /// What to say when there is no row.
        empty: &'static str,
    },
    /// The fields of one object (`GET api`), e.g. a summary or one ticket.
    Record {
        /// The section's heading.
        title: &'static str,
        /// The route read.
        api: &'static str,
        /// The fields shown.
        fields: Vec<Field>,
    },
    /// A question form; the answer's `list` rows are shown as cards (heading, body, fields).
    Search {
        /// The section's heading.
        title: &'static str,
        /// The route asked.
        api: &'static str,
        /// Its query parameter for the question.
        param: &'static str,
        /// The question field's label.
        label: &'static str,
        /// Where the results are in the answer.
        list: &'static str,
        /// A result's heading field.
        heading: &'static str,
        /// A result's text field.
        body: &'static str,
        /// A result's other fields.
        fields: Vec<Field>,
        /// Fields of the whole answer shown above the cards (the verdict).
        summary: Vec<Field>,
    },
    /// A bar chart of `value` per `label` over the rows at `list`, against `limit` (a field of
    /// the whole answer) when there is one, with the rows as a table under it.
    Bars {
        /// The chart's heading.
        title: &'static str,
        /// The route read.
        api: &'static str,
        /// Where the rows are in its answer.
        list: &'static str,
        /// A row's label field (the x axis).
        label: &'static str,
        /// A row's value (the bar).
        value: Field,
        /// A field of the whole answer drawn as a limit line (the budget).
        limit: Option<&'static str>,
        /// The table under the chart.
        columns: Vec<Field>,
    },
    /// A form sent as JSON to `POST api`; the API's error is shown beside the field it names,
    /// with what was typed kept (secrets excepted).
    Form {
        /// The section's heading.
        title: &'static str,
        /// The route that receives the form.
        api: &'static str,
        /// One sentence under the heading.
        help: &'static str,
        /// Values sent with every submission (`("kind", "website")`).
        fixed: &'static [(&'static str, &'static str)],
        /// The controls.
        fields: Vec<FormField>,
        /// The button's text.
        submit: &'static str,
        /// Folded (a `<details>`) until opened or until it holds an error: keeps a page short.
        folded: bool,
    },
    /// A file the browser downloads: the answer of `GET api` (a CSV export), as `filename`.
    Download {
        /// The link's text.
        label: &'static str,
        /// The route read.
        api: &'static str,
        /// The file's name in the browser.
        filename: &'static str,
        /// One sentence beside the link.
        help: &'static str,
    },
    /// A file sent as the body of `POST api` (a CSV import); the answer's fields are shown.
    Upload {
        /// The section's heading.
        title: &'static str,
        /// The route that receives the file.
        api: &'static str,
        /// The file's content type, sent to the API (`text/csv`).
        content_type: &'static str,
        /// The file input's label.
        label: &'static str,
        /// One sentence under the heading.
        help: &'static str,
        /// Fields of the API's answer shown after the upload (`added`, `updated`).
        result: Vec<Field>,
    },
    /// A button: `POST api` (a change), or with `follow_url`, `GET api` and open its `url` field.
    Action {
        /// The button's text.
        label: &'static str,
        /// The route called.
        api: &'static str,
        /// Open the `url` the route answers instead of changing something.
        follow_url: bool,
        /// One sentence beside the button.
        help: &'static str,
    },
}

/// A page of a module bound to a row (e.g. `tickets/{number}`): matched by [`PageSpec::slug`]
/// with `/{name}` parts.
pub fn match_slug(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    if p.len() != s.len() {
        return None;
    }
    let mut params = Vec::new();
    for (a, b) in p.iter().zip(&s) {
        match a.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
            Some(name) if !b.is_empty() => params.push((name.to_owned(), (*b).to_owned())),
            Some(_) => return None,
            None if a == b => {}
            None => return None,
        }
    }
    Some(params)
}

/// `template` with each `{name}` replaced by its value, percent-encoded so that a value stays
/// one path segment (`None` when a parameter is missing).
pub fn fill(template: &str, params: &[(String, String)]) -> Option<String> {
    let mut out = template.to_owned();
    for (k, v) in params {
        let encoded: String = v
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        out = out.replace(&format!("{{{k}}}"), &encoded);
    }
    (!out.contains('{')).then_some(out)
}

/// The JSON body of a [`Section::Form`]: the fixed values, then each field's trimmed value
/// (`value(name)`) at its dotted path; an empty field is left out.
pub fn form_json(
    fixed: &[(&str, &str)],
    fields: &[FormField],
    value: impl Fn(&str) -> Option<String>,
) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    for (k, v) in fixed {
        body.insert((*k).to_owned(), serde_json::Value::String((*v).to_owned()));
    }
    for f in fields {
        let text = value(f.name).unwrap_or_default().trim().to_owned();
        if text.is_empty() {
            continue;
        }
        let mut at = &mut body;
        let mut parts = f.name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_owned(), serde_json::Value::String(text));
                break;
            }
            let next = at.entry(part.to_owned()).or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !next.is_object() {
                *next = serde_json::Value::Object(serde_json::Map::new());
            }
            let serde_json::Value::Object(map) = next else { break };
            at = map;
        }
    }
    serde_json::Value::Object(body)
}

/// The `{name}` parameters of a template, in order.
pub fn params_of(template: &str) -> Vec<&str> {
    template.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(name, _)| name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_match_with_their_parameters() {
        assert_eq!(match_slug("tickets", "tickets"), Some(vec![]));
        assert_eq!(match_slug("tickets/{number}", "tickets/7"), Some(vec![("number".into(), "7".into())]));
        assert_eq!(match_slug("tickets/{number}", "tickets/"), None);
        assert_eq!(match_slug("tickets/{number}", "faq/7"), None);
        assert_eq!(match_slug("tickets", "tickets/7"), None);
    }

    #[test]
    fn fill_keeps_each_value_in_its_segment() {
        let p = vec![("number".to_owned(), "7".to_owned())];
        assert_eq!(fill("/tickets/{number}/transcript", &p).as_deref(), Some("/tickets/7/transcript"));
        let bad = vec![("number".to_owned(), "../settings".to_owned())];
        assert_eq!(fill("/tickets/{number}", &bad).as_deref(), Some("/tickets/%2E%2E%2Fsettings"));
        assert_eq!(fill("/tickets/{number}", &[]), None);
        assert_eq!(params_of("/kb/sources/{name}/sync"), vec!["name"]);
    }

    #[test]
    fn form_values_become_nested_json() {
        let fields = [
            FormField { name: "name", label: "Name", help: "", input: Input::Text, required: true },
            FormField { name: "config.url", label: "Address", help: "", input: Input::Url, required: true },
            FormField { name: "config.pages", label: "Pages", help: "", input: Input::Text, required: false },
            FormField { name: "credential", label: "Token", help: "", input: Input::Secret, required: false },
        ];
        let typed =
            [("name", " docs "), ("config.url", "https://x.test"), ("config.pages", " a, b "), ("credential", "")];
        let body = form_json(&[("kind", "website")], &fields, |n| {
            typed.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(
            body,
            serde_json::json!({"kind": "website", "name": "docs", "config": {"url": "https://x.test", "pages": "a, b"}})
        );
    }
}
