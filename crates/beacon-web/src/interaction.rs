//! Reading one `POST /interactions` request: the signature headers, the signature over
//! `timestamp ‖ body`, then the JSON. Pure (no app, no I/O), so the fuzz harness
//! (`crates/beacon-fuzz`) drives exactly what the endpoint runs.

use axum::http::{HeaderMap, StatusCode};
use beacon_discord::verify::InteractionVerifier;
use twilight_model::application::interaction::{Interaction, InteractionType};

/// Deepest JSON nesting an interaction body may have. This is serde_json's own recursion limit
/// (fixed at 128 by the crate); a deeper body is refused with 400 before any model is built, so
/// a hostile body cannot exhaust the stack.
pub const MAX_JSON_DEPTH: usize = 128;

/// A request that passed the signature check and decoded.
#[derive(Debug)]
pub enum Incoming {
    /// Discord's PING (type 1), answered with PONG.
    Ping,
    /// Any other interaction, for the router.
    Interaction(Box<Interaction>),
}

/// Why a request was refused: the status to answer, the text of the answer, and whether it
/// failed its signature (counted apart in `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 401 for a missing or wrong signature, 400 for a body that does not decode.
    pub status: StatusCode,
    /// The answer's body (says what was wrong, never echoes the input).
    pub message: &'static str,
    /// The detail for the log line (the service — or someone posing as it — sent this).
    pub detail: String,
}

impl Refused {
    /// Whether the request failed its signature check.
    pub fn unsigned(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }
}

fn refused(status: StatusCode, message: &'static str, detail: impl Into<String>) -> Refused {
    Refused { status, message, detail: detail.into() }
}

/// Checks the signature headers and the signature, then decodes the body. The body limit
/// ([`crate::BODY_LIMIT`]) is the router's layer, before this runs.
pub fn read_interaction(
    verifier: &InteractionVerifier,
    headers: &HeaderMap,
    body: &[u8],
    now_unix_secs: u64,
) -> Result<Incoming, Refused> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header("x-signature-ed25519"), header("x-signature-timestamp")) else {
        return Err(refused(StatusCode::UNAUTHORIZED, "missing signature headers", "missing signature headers"));
    };
    verifier
        .verify(signature, timestamp, body, now_unix_secs)
        .map_err(|e| refused(StatusCode::UNAUTHORIZED, "invalid request signature", e.to_string()))?;
    // One pass for what Discord sends (the body straight into the model); only a body that is
    // not a whole interaction is read again, to tell a short PING from a malformed request.
    match serde_json::from_slice::<Interaction>(body) {
        Ok(i) if i.kind == InteractionType::Ping => Ok(Incoming::Ping),
        Ok(i) => Ok(Incoming::Interaction(Box::new(i))),
        Err(_) => read_partial(body),
    }
}

/// A body that did not decode as an interaction: a PING with few fields, or why it is refused.
fn read_partial(body: &[u8]) -> Result<Incoming, Refused> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let message = if e.to_string().contains("recursion limit") {
            "malformed interaction: JSON nested too deeply"
        } else {
            "malformed interaction"
        };
        refused(StatusCode::BAD_REQUEST, message, format!("undecodable interaction body: {e}"))
    })?;
    // PING (type 1) carries few fields; answer it before the full model is required.
    if value.get("type").and_then(serde_json::Value::as_u64) == Some(1) {
        return Ok(Incoming::Ping);
    }
    serde_json::from_value::<Interaction>(value)
        .map(|i| Incoming::Interaction(Box::new(i)))
        .map_err(|e| refused(StatusCode::BAD_REQUEST, "malformed interaction", format!("undecodable interaction: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: u64 = 1_700_000_000;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn signed(body: &[u8]) -> (InteractionVerifier, HeaderMap) {
        let key = key();
        let verifier =
            InteractionVerifier::from_hex(&hex::encode(key.verifying_key().to_bytes())).expect("a valid test key");
        let ts = NOW.to_string();
        let mut message = ts.as_bytes().to_vec();
        message.extend_from_slice(body);
        let mut headers = HeaderMap::new();
        headers.insert("x-signature-ed25519", hex::encode(key.sign(&message).to_bytes()).parse().expect("hex"));
        headers.insert("x-signature-timestamp", ts.parse().expect("digits"));
        (verifier, headers)
    }

    #[test]
    fn a_signed_ping_is_a_ping_and_a_wrong_signature_is_401() {
        let (verifier, headers) = signed(br#"{"type":1}"#);
        assert!(matches!(read_interaction(&verifier, &headers, br#"{"type":1}"#, NOW), Ok(Incoming::Ping)));
        let refused = read_interaction(&verifier, &headers, br#"{"type":1} "#, NOW).expect_err("body changed");
        assert!(refused.unsigned());
        let refused = read_interaction(&verifier, &HeaderMap::new(), b"{}", NOW).expect_err("no headers");
        assert_eq!(refused.message, "missing signature headers");
    }

    #[test]
    fn json_deeper_than_the_limit_is_a_400_that_says_so() {
        let deep = format!("{}{}", "[".repeat(MAX_JSON_DEPTH + 1), "]".repeat(MAX_JSON_DEPTH + 1));
        let (verifier, headers) = signed(deep.as_bytes());
        let refused = read_interaction(&verifier, &headers, deep.as_bytes(), NOW).expect_err("too deep");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.message.contains("nested too deeply"), "{refused:?}");
        // Within the limit the body decodes as JSON (and is then refused as no interaction).
        let inner = MAX_JSON_DEPTH - 2;
        let shallow = format!(r#"{{"type":2,"x":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
        let (verifier, headers) = signed(shallow.as_bytes());
        let refused = read_interaction(&verifier, &headers, shallow.as_bytes(), NOW).expect_err("no interaction");
        assert_eq!(refused.message, "malformed interaction");
    }

    /// A whole interaction decodes in one pass, a whole PING is a PING, and both decode as the
    /// two-pass reading (JSON value, then the model) does.
    #[test]
    fn whole_interactions_decode_as_before() {
        let command = serde_json::json!({
            "id": "11", "application_id": "1", "type": 2, "token": "tok", "version": 1, "guild_id": "22",
            "channel_id": "3", "locale": "en-US", "app_permissions": "0", "entitlements": [], "attachment_size_limit": 8388608,
            "authorizing_integration_owners": {},
            "member": {"user": {"id": "4", "username": "bob", "discriminator": "0", "avatar": null},
                       "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false,
                       "permissions": "8", "flags": 0},
            "data": {"id": "5", "name": "status", "type": 1},
        });
        let body = serde_json::to_vec(&command).expect("json");
        let (verifier, headers) = signed(&body);
        let outcome = read_interaction(&verifier, &headers, &body, NOW);
        let Ok(Incoming::Interaction(decoded)) = outcome else {
            panic!("a command interaction: {outcome:?}");
        };
        let two_pass: Interaction = serde_json::from_value(command.clone()).expect("the model");
        assert_eq!(*decoded, two_pass);
        let mut ping = command;
        ping["type"] = serde_json::json!(1);
        let body = serde_json::to_vec(&ping).expect("json");
        let (verifier, headers) = signed(&body);
        assert!(matches!(read_interaction(&verifier, &headers, &body, NOW), Ok(Incoming::Ping)));
    }

    #[test]
    fn a_signed_body_that_is_not_an_interaction_is_a_400() {
        for body in [&b"not json"[..], b"{\"type\":2}", b"\xff\xfe", b""] {
            let (verifier, headers) = signed(body);
            let refused = read_interaction(&verifier, &headers, body, NOW).expect_err("bad body");
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body:?}");
        }
    }
}
