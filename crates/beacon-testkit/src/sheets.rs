//! A fake Google OAuth token endpoint and Sheets values API, for tests of the knowledge base's
//! Google Sheets source.
//!
//! `POST /token` takes the service-account JWT bearer grant
//! (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`), checks the RS256
//! signature against the public half of a **test-only** key pair shipped in
//! `fixtures/TEST-ONLY-google-sa-key.pem` and the claims (`iss`, `aud`, `scope`, `iat`, `exp`),
//! and issues an access token. `GET /v4/spreadsheets/{id}/values/{range}` serves scripted cells to
//! a valid bearer token. Tokens can be revoked to test refreshing; requests are recorded.
//!
//! ```no_run
//! use beacon_testkit::sheets::FakeSheets;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let fake = FakeSheets::start().await?;
//! fake.set_values("sheet1", vec![vec!["Question".into(), "Answer".into()], vec!["Hours?".into(), "9-5".into()]]);
//! // Point a client at fake.base_url() with the key from fake.service_account_base64().
//! assert_eq!(fake.token_requests(), 0);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The test-only service-account private key (PKCS#8 PEM, with a warning line before it).
const TEST_KEY_FILE: &str = include_str!("../fixtures/TEST-ONLY-google-sa-key.pem");
/// The service account's e-mail the fake expects as `iss`.
pub const CLIENT_EMAIL: &str = "beacon-test@beacon-test.iam.gserviceaccount.com";
/// The scope the fake requires.
pub const SHEETS_SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";

/// The PEM block of the test key (what a real key file's `private_key` holds).
pub fn test_private_key_pem() -> String {
    match TEST_KEY_FILE.find("-----BEGIN") {
        Some(i) => TEST_KEY_FILE[i..].to_string(),
        None => String::new(),
    }
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----") && !l.trim().is_empty()).collect();
    STANDARD.decode(body.trim()).ok()
}

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetsRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status answered.
    pub status: u16,
}

#[derive(Default)]
struct Data {
    /// spreadsheet id → rows.
    values: HashMap<String, Vec<Vec<String>>>,
    /// access token → expiry (unix seconds).
    tokens: HashMap<String, u64>,
    token_lifetime_secs: u64,
    requests: Vec<SheetsRequest>,
    issued: usize,
}

struct Shared {
    base_url: String,
    public_key: Vec<u8>,
    data: Mutex<Data>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn record(&self, method: &str, path: &str, status: StatusCode) {
        self.lock().requests.push(SheetsRequest { method: method.into(), path: path.into(), status: status.as_u16() });
    }
}

/// A running fake Google; stops when dropped.
pub struct FakeSheets {
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for FakeSheets {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::fmt::Debug for FakeSheets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSheets").field("base_url", &self.shared.base_url).finish()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl FakeSheets {
    /// Starts the fake; issued tokens live an hour unless [`FakeSheets::set_token_lifetime`].
    pub async fn start() -> std::io::Result<FakeSheets> {
        let der = pem_der(&test_private_key_pem())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "test key is not PEM"))?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("test key: {e}")))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            public_key: pair.public_key().as_ref().to_vec(),
            data: Mutex::new(Data { token_lifetime_secs: 3600, ..Data::default() }),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/v4/spreadsheets/{id}/values/{range}", get(values))
            .with_state(shared.clone());
        let cancel = CancellationToken::new();
        crate::serve_until_cancelled(listener, app, cancel.clone(), "sheets");
        Ok(FakeSheets { shared, cancel })
    }

    /// `http://127.0.0.1:PORT` (Sheets API base; the token URI is `{base_url}/token`).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token URI put into the service-account key.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    /// A service-account key file (JSON) with the test key, pointing at this fake's token URI.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "beacon-test",
            "private_key_id": "test-key",
            "private_key": test_private_key_pem(),
            "client_email": CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    /// The key file base64-encoded, as `BEACON_GOOGLE_SA_BASE64` holds it.
    pub fn service_account_base64(&self) -> String {
        STANDARD.encode(self.service_account_json())
    }

    /// Sets a spreadsheet's cells (any range returns all of them).
    pub fn set_values(&self, spreadsheet_id: &str, rows: Vec<Vec<String>>) {
        self.shared.lock().values.insert(spreadsheet_id.into(), rows);
    }

    /// Lifetime (`expires_in`) of tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.lock().token_lifetime_secs = secs;
    }

    /// Invalidates every issued token (the next API call answers 401).
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// How many access tokens were issued.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().issued
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<SheetsRequest> {
        self.shared.lock().requests.clone()
    }
}

fn oauth_error(status: StatusCode, description: &str) -> Response {
    (status, axum::Json(json!({"error": "invalid_grant", "error_description": description}))).into_response()
}

/// Checks a JWT bearer assertion; `Err` says why it is refused.
fn verify_assertion(shared: &Shared, jwt: &str) -> Result<(), String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| "bad base64url".to_string());
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| "bad header")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("alg must be RS256".into());
    }
    let sig = decode(s)?;
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &shared.public_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
    let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|_| "bad claims")?;
    let str_claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    if str_claim("iss") != CLIENT_EMAIL {
        return Err("unknown iss".into());
    }
    if str_claim("aud") != format!("{}/token", shared.base_url) {
        return Err("aud must be the token URI".into());
    }
    if !str_claim("scope").split(' ').any(|s| s == SHEETS_SCOPE || s == "https://www.googleapis.com/auth/spreadsheets")
    {
        return Err("scope does not allow reading sheets".into());
    }
    let (Some(iat), Some(exp)) = (claims.get("iat").and_then(Value::as_u64), claims.get("exp").and_then(Value::as_u64))
    else {
        return Err("iat and exp are required".into());
    };
    let now = now_secs();
    if exp <= now || iat > now + 60 || exp.saturating_sub(iat) > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".into());
    }
    Ok(())
}

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let outcome = if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        Err("unsupported grant_type".to_string())
    } else {
        match form.get("assertion") {
            Some(a) => verify_assertion(&shared, a),
            None => Err("assertion missing".into()),
        }
    };
    match outcome {
        Err(why) => {
            shared.record("POST", "/token", StatusCode::BAD_REQUEST);
            oauth_error(StatusCode::BAD_REQUEST, &why)
        }
        Ok(()) => {
            let access = format!("ya29.fake-{:016x}", fastrand::u64(..));
            let lifetime = {
                let mut d = shared.lock();
                let lifetime = d.token_lifetime_secs;
                d.tokens.insert(access.clone(), now_secs() + lifetime);
                d.issued += 1;
                lifetime
            };
            shared.record("POST", "/token", StatusCode::OK);
            axum::Json(json!({"access_token": access, "expires_in": lifetime, "token_type": "Bearer"})).into_response()
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn values(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((id, range)): Path<(String, String)>,
) -> Response {
    let path = format!("/v4/spreadsheets/{id}/values/{range}");
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let valid = bearer.is_some_and(|t| shared.lock().tokens.get(t).is_some_and(|exp| *exp > now_secs()));
    if !valid {
        shared.record("GET", &path, StatusCode::UNAUTHORIZED);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})),
        )
            .into_response();
    }
    let rows = shared.lock().values.get(&id).cloned();
    match rows {
        Some(rows) => {
            shared.record("GET", &path, StatusCode::OK);
            axum::Json(json!({"range": range, "majorDimension": "ROWS", "values": rows})).into_response()
        }
        None => {
            shared.record("GET", &path, StatusCode::NOT_FOUND);
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})),
            )
                .into_response()
        }
    }
}
