//! The REST pipeline under `/api/v10`: route matching, auth, injected faults, rate limits,
//! body validation, then the operation handler.

use crate::handlers::{self, Reply};
use crate::ratelimit::{self, Limits};
use crate::server::Shared;
use crate::types::{FaultKind, RecordedRequest};
use crate::validate::{self, Matched};
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Query parameters.
pub type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Extract the JSON body: plain JSON, or the `payload_json` part of a multipart body.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if let Some(boundary) =
        content_type.strip_prefix("multipart/form-data").and_then(|rest| rest.split("boundary=").nth(1))
    {
        let boundary = boundary.trim_matches('"').split(';').next().unwrap_or_default();
        return multipart_payload(body, boundary);
    }
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

/// Discord's upload limit for a bot's file (10 MiB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// The `files[n]` parts of a multipart body: file name and bytes.
fn multipart_files(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(boundary) =
        content_type.strip_prefix("multipart/form-data").and_then(|rest| rest.split("boundary=").nth(1))
    else {
        return Vec::new();
    };
    let boundary = boundary.trim_matches('"').split(';').next().unwrap_or_default();
    let delimiter = format!("--{boundary}").into_bytes();
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        let end = find(rest, &delimiter).unwrap_or(rest.len());
        let part = &rest[..end];
        let Some(split) = find(part, b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..split]);
        if !head.contains("name=\"files[") {
            continue;
        }
        let filename =
            head.split("filename=\"").nth(1).and_then(|f| f.split('"').next()).unwrap_or_default().to_owned();
        let content = &part[split + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        files.push((filename, content.to_vec()));
    }
    files
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn multipart_payload(body: &[u8], boundary: &str) -> Result<Value, String> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    for part in text.split(delimiter.as_str()) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        if head.contains("name=\"payload_json\"") {
            let content = content.trim_end_matches("\r\n");
            return serde_json::from_str(content).map_err(|e| format!("payload_json is not JSON: {e}"));
        }
    }
    // File-only uploads carry no JSON part.
    Ok(json!({}))
}

fn json_response(status: u16, body: Option<&Value>, headers: &[(&'static str, String)]) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match body {
        Some(b) => (status, axum::Json(b.clone())).into_response(),
        None => status.into_response(),
    };
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            resp.headers_mut().insert(*k, v);
        }
    }
    resp
}

fn record(sh: &Shared, method: &str, path: &str, op: Option<&str>, body: &Value, status: u16, reason: Option<&str>) {
    sh.lock().requests.push(RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        operation_id: op.map(str::to_owned),
        body: body.clone(),
        status,
        audit_log_reason: reason.map(str::to_owned),
    });
    sh.notify();
}

fn rate_limited(retry_after: f64, global: bool) -> Value {
    json!({
        "message": "You are being rate limited.",
        "retry_after": (retry_after * 1000.0).round() / 1000.0,
        "global": global,
        "code": 0,
    })
}

/// Handle one `/api/v10` request.
pub async fn handle(
    AxState(sh): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.as_str().to_uppercase();
    let Some(path) = uri.path().strip_prefix("/api/v10") else {
        return json_response(404, Some(&json!({"message": "404: Not Found", "code": 0})), &[]);
    };
    let path = path.trim_end_matches('/').to_owned();
    let shown = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let query = parse_query(uri.query());
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let parsed = parse_body(&content_type, &body);
    // Discord reads `X-Audit-Log-Reason` as URL-encoded UTF-8 and keeps at most 512 characters.
    let raw_reason = headers.get("x-audit-log-reason").map(|v| v.to_str().map(str::to_owned));
    let reason = match &raw_reason {
        Some(Ok(v)) => Some(handlers::percent_decode(v)),
        _ => None,
    };
    let recorded_body = parsed.clone().unwrap_or(Value::Null);
    let files = multipart_files(&content_type, &body);
    if let Some((name, bytes)) = files.iter().find(|(_, b)| b.len() > MAX_UPLOAD_BYTES) {
        let why = format!("file {name} is {} bytes; Discord's upload limit is {MAX_UPLOAD_BYTES}", bytes.len());
        sh.lock().violation(None, &method, &shown, why);
        record(&sh, &method, &shown, None, &recorded_body, 413, reason.as_deref());
        return json_response(413, Some(&json!({"message": "Request entity too large", "code": 40005})), &[]);
    }

    let Some(matched) = sh.routes.find(&method, &path) else {
        let why = if sh.routes.path_known(&path) {
            format!("{method} is not allowed on {path}")
        } else {
            format!("no Discord operation matches {method} {path}")
        };
        sh.lock().violation(None, &method, &shown, why);
        record(&sh, &method, &shown, None, &recorded_body, 404, reason.as_deref());
        return json_response(404, Some(&json!({"message": "404: Not Found", "code": 0})), &[]);
    };
    let op_id = matched.op.id.clone();

    let bot_auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.strip_prefix("Bot ") == Some(sh.token.as_str()));
    // A user's OAuth2 access token (`Authorization: Bearer …`), on the routes a login uses.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if !bot_auth && !matched.op.token_route && bearer.is_none() {
        sh.lock().violation(
            Some(&op_id),
            &method,
            &shown,
            "missing or invalid `Authorization: Bot <token>` header".into(),
        );
        record(&sh, &method, &shown, Some(&op_id), &recorded_body, 401, reason.as_deref());
        return json_response(401, Some(&json!({"message": "401: Unauthorized", "code": 0})), &[]);
    }

    let fault = {
        let mut st = sh.lock();
        let found = st.faults.iter_mut().find(|f| {
            f.times > 0
                && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&method))
                && shown.contains(&f.path_contains)
        });
        found.map(|f| {
            f.times -= 1;
            f.kind.clone()
        })
    };
    let mut delay_after = None;
    match fault {
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::DelayAfter(d)) => delay_after = Some(d),
        Some(FaultKind::Status(429)) => {
            let headers = [
                ("x-ratelimit-bucket", "injected".to_owned()),
                ("x-ratelimit-limit", "1".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset-after", "1.000".to_owned()),
                ("x-ratelimit-scope", "user".to_owned()),
                ("retry-after", "1".to_owned()),
            ];
            record(&sh, &method, &shown, Some(&op_id), &recorded_body, 429, reason.as_deref());
            return json_response(429, Some(&rate_limited(1.0, false)), &headers);
        }
        Some(FaultKind::Status(status)) => {
            record(&sh, &method, &shown, Some(&op_id), &recorded_body, status, reason.as_deref());
            let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
            return json_response(status, Some(&json!({"message": format!("{status}: {reason}"), "code": 0})), &[]);
        }
        None => {}
    }

    let verdict = {
        let limits = Limits {
            route_limit: sh.opts.route_limit,
            route_window: sh.opts.route_window,
            global_limit: sh.opts.global_limit,
        };
        let mut st = sh.lock();
        let st = &mut *st;
        ratelimit::check(&mut st.buckets, &mut st.global_window, limits, &matched, bot_auth)
    };
    if let Some((retry, global)) = verdict.limited {
        record(&sh, &method, &shown, Some(&op_id), &recorded_body, 429, reason.as_deref());
        return json_response(429, Some(&rate_limited(retry, global)), &verdict.headers);
    }

    let body = match parsed {
        Ok(b) => b,
        Err(why) => {
            sh.lock().violation(Some(&op_id), &method, &shown, why);
            record(&sh, &method, &shown, Some(&op_id), &Value::Null, 400, reason.as_deref());
            return json_response(
                400,
                Some(&json!({"message": "The request body contains invalid JSON.", "code": 50109})),
                &verdict.headers,
            );
        }
    };

    let reason_error = match &raw_reason {
        Some(Err(_)) => Some("X-Audit-Log-Reason is not visible ASCII (URL-encode it)".to_owned()),
        _ => reason
            .as_ref()
            .filter(|r| r.chars().count() > 512)
            .map(|r| format!("X-Audit-Log-Reason is {} characters (at most 512)", r.chars().count())),
    };
    if let Some(why) = reason_error {
        sh.lock().violation(Some(&op_id), &method, &shown, why);
        record(&sh, &method, &shown, Some(&op_id), &body, 400, reason.as_deref());
        return json_response(400, Some(&json!({"message": "Invalid Form Body", "code": 50035})), &verdict.headers);
    }

    if let Some(reply) = validate_body(&sh, &matched, &method, &shown, &body) {
        record(&sh, &method, &shown, Some(&op_id), &body, reply.status, reason.as_deref());
        return json_response(reply.status, reply.body.as_ref(), &verdict.headers);
    }

    let reply = match &bearer {
        Some(token) if !bot_auth => bearer_dispatch(&sh, &matched, &query, token),
        _ => handlers::dispatch(&sh, &matched, &query, &body, reason.as_deref()),
    };
    if let Some(reason) = &reply.violation {
        sh.lock().violation(Some(&op_id), &method, &shown, reason.clone());
    }
    // Only a request Discord accepted leaves its files (a refused one is sent again).
    if (200..300).contains(&reply.status) && !files.is_empty() {
        let mut st = sh.lock();
        for (filename, bytes) in files {
            st.uploads.push(crate::types::Upload { path: shown.clone(), filename, bytes });
        }
    }
    record(&sh, &method, &shown, Some(&op_id), &body, reply.status, reason.as_deref());
    if let Some(d) = delay_after {
        tokio::time::sleep(d).await;
    }
    json_response(reply.status, reply.body.as_ref(), &verdict.headers)
}

/// Schema and documented-rule validation; `Some` is the 400 to answer with.
pub fn validate_body(sh: &Shared, m: &Matched, method: &str, path: &str, body: &Value) -> Option<Reply> {
    let mut errs = Vec::new();
    if !body.is_null()
        && let Some(spec) = &sh.spec
    {
        errs.extend(spec.validate(&m.op, body));
    }
    errs.extend(validate::extra_rules(&m.op.id, body));
    if !errs.is_empty() {
        let reason = errs.iter().map(|e| e.describe()).collect::<Vec<_>>().join("; ");
        sh.lock().violation(Some(&m.op.id), method, path, reason);
        return Some(Reply::json(
            400,
            json!({"code": 50035, "message": "Invalid Form Body", "errors": validate::errors_json(&errs)}),
        ));
    }
    let empty_check = match m.op.id.as_str() {
        "create_message" | "execute_webhook" => true,
        "create_interaction_response" => body["type"].as_u64() == Some(4),
        _ => false,
    };
    let target = if m.op.id == "create_interaction_response" { &body["data"] } else { body };
    if empty_check && validate::message_is_empty(target) {
        sh.lock().violation(Some(&m.op.id), method, path, "Cannot send an empty message".into());
        return Some(Reply::json(400, json!({"code": 50006, "message": "Cannot send an empty message"})));
    }
    None
}

/// An operation called with a user's bearer token: `GET /users/@me` (scope `identify`) and
/// `GET /users/@me/guilds` (scope `guilds`); any other is refused as a bot-only route.
fn bearer_dispatch(sh: &Shared, m: &Matched, q: &Query, token: &str) -> Reply {
    let st = sh.lock();
    let scope = match m.op.id.as_str() {
        "get_my_user" => "identify",
        "list_my_guilds" => "guilds",
        other => {
            return Reply::violation(
                401,
                0,
                "401: Unauthorized",
                format!("{other} needs the bot token, not a user's bearer token"),
            );
        }
    };
    let user = match crate::oauth::bearer_user(&st, token, scope) {
        Ok(u) => u,
        Err(reply) => return reply,
    };
    if scope == "guilds" {
        return crate::oauth::list_guilds(&st, user, q);
    }
    let mut me = crate::json::user_by_id(&st, user);
    me["mfa_enabled"] = json!(false);
    me["locale"] = json!("en-US");
    Reply::ok(me)
}
