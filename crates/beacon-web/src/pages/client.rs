//! The pages' only way to data: a request through the `/api/v1` router itself, carrying the
//! browser's session cookie (and, for a change, the form's CSRF token and the browser's
//! `Origin`), so every page sees and changes exactly what the API allows that caller. These
//! requests are marked ([`crate::api::PageCall`]) and not counted by the API's rate limits: a
//! page is counted once, by the pages' per-IP limit.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

/// Largest API answer a page reads (a CSV export is the biggest).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// An API error as the page shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// The API's stable code (`unauthenticated`, `invalid_value`, …).
    pub code: String,
    /// The API's message for a person.
    pub message: String,
    /// The field at fault, for a validation error.
    pub field: Option<String>,
}

impl Failure {
    fn from_body(status: StatusCode, body: &[u8]) -> Failure {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        Failure {
            status,
            code: e["code"].as_str().unwrap_or("error").to_owned(),
            message: e["message"].as_str().map_or_else(|| format!("The request failed ({status})."), str::to_owned),
            field: e["field"].as_str().map(str::to_owned),
        }
    }

    pub(crate) fn internal(what: impl std::fmt::Display) -> Failure {
        tracing::error!(error = %what, "dashboard page failed");
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            message: "Something went wrong on our side.".into(),
            field: None,
        }
    }
}

/// What an API call returned: its JSON (null when the body is not JSON), its body as sent,
/// its content type and the cookies it set.
pub struct Answer {
    pub json: Value,
    pub bytes: Bytes,
    pub content_type: String,
    pub set_cookies: Vec<HeaderValue>,
}

/// A request body: JSON, or a file's bytes with their content type.
pub enum Body {
    Json(Value),
    File { content_type: &'static str, bytes: Bytes },
}

/// The API, as the browser behind this page request may call it.
#[derive(Clone)]
pub struct Api {
    router: Router,
    cookie: Option<HeaderValue>,
    origin: Option<HeaderValue>,
}

impl Api {
    /// The API seen with the browser's cookie and origin.
    pub fn new(router: Router, headers: &HeaderMap) -> Api {
        Api { router, cookie: headers.get(header::COOKIE).cloned(), origin: headers.get(header::ORIGIN).cloned() }
    }

    /// `GET path` (absolute, under `/api/v1`).
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(Method::GET, path, None, None).await.map(|a| a.json)
    }

    /// `GET path` as the API sent it (a CSV export).
    pub async fn get_raw(&self, path: &str) -> Result<Answer, Failure> {
        self.call(Method::GET, path, None, None).await
    }

    /// A change (`POST`, `PUT`, `PATCH`, `DELETE`) with the form's CSRF token.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, csrf: &str) -> Result<Answer, Failure> {
        self.call(method, path, body.map(Body::Json), Some(csrf)).await
    }

    /// A file sent as the body of a change (a CSV import), with the form's CSRF token.
    pub async fn send_file(
        &self,
        path: &str,
        content_type: &'static str,
        bytes: Bytes,
        csrf: &str,
    ) -> Result<Answer, Failure> {
        self.call(Method::POST, path, Some(Body::File { content_type, bytes }), Some(csrf)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        csrf: Option<&str>,
    ) -> Result<Answer, Failure> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c.clone());
        }
        if let Some(o) = &self.origin {
            req = req.header(header::ORIGIN, o.clone());
        }
        if let Some(token) = csrf {
            req = req.header("x-csrf-token", token);
        }
        let body = match body {
            Some(Body::Json(v)) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                axum::body::Body::from(v.to_string())
            }
            Some(Body::File { content_type, bytes }) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                axum::body::Body::from(bytes)
            }
            None => axum::body::Body::empty(),
        };
        let mut req = req.body(body).map_err(Failure::internal)?;
        // The page was counted by the pages' limit; its API calls do not spend the API's.
        req.extensions_mut().insert(crate::api::PageCall);
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let set_cookies = resp.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_BODY).await.map_err(Failure::internal)?;
        if !status.is_success() {
            return Err(Failure::from_body(status, &bytes));
        }
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok(Answer { json, bytes, content_type, set_cookies })
    }
}
