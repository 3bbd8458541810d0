//! Construction of the twilight-http REST client.

use twilight_http::Client;
use twilight_http::request::Request;
use twilight_http::routing::Route;
use twilight_model::channel::Message;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::id::Id;
use twilight_model::id::marker::ChannelMarker;

/// The REST client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum RestConfigError {
    /// `api_url` is not an `http://` or `https://` origin (optionally with a
    /// path prefix).
    #[error("invalid Discord API URL {url:?}: {reason}")]
    InvalidApiUrl {
        /// The rejected URL.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The token is empty or contains whitespace/control characters (the
    /// token itself is never included in the message).
    #[error("bot token is empty or malformed")]
    InvalidToken,
    /// Called outside a Tokio runtime; the client's rate limiter spawns a task.
    #[error("the REST client must be created inside a Tokio runtime")]
    NoRuntime,
    /// TLS is not usable: no crypto provider installed (the binary installs it
    /// with `beacon_http::install_crypto_provider`) or no CA certificates.
    #[error("TLS: {0}")]
    Tls(#[from] beacon_http::HttpError),
}

/// Builds a twilight-http client pointed at `api_url` (`"https://discord.com"`
/// or e.g. `"http://127.0.0.1:9000"`); requests then go to
/// `{api_url}/api/v10/…`. Every message sent through it defaults to
/// [`mentions::none`](crate::mentions::none).
///
/// `token` may be given with or without the `Bot ` prefix; `None` builds a
/// client for unauthenticated routes (e.g. interaction callbacks).
///
/// Must be called inside a Tokio runtime.
pub fn client(token: Option<&str>, api_url: &str) -> Result<Client, RestConfigError> {
    let (use_http, host) = parse_api_url(api_url)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(RestConfigError::NoRuntime);
    }
    let mut builder =
        Client::builder().default_allowed_mentions(crate::mentions::none()).proxy(host.to_owned(), use_http);
    if let Some(token) = token {
        let token = token.trim();
        // Validate what follows a `Bot`/`Bearer` prefix (never log it).
        let bare = ["Bot ", "Bearer ", "Bot", "Bearer"]
            .iter()
            .find_map(|p| token.strip_prefix(p))
            .unwrap_or(token)
            .trim_start();
        if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RestConfigError::InvalidToken);
        }
        builder = builder.token(token.to_owned());
    }
    // twilight's connector panics without a provider or without CA certificates: check first.
    beacon_http::require_tls()?;
    Ok(builder.build())
}

/// Splits `api_url` into (uses plain http, `host[:port][/prefix]`), the shape
/// twilight's `proxy` option expects.
fn parse_api_url(api_url: &str) -> Result<(bool, &str), RestConfigError> {
    let invalid = |reason| RestConfigError::InvalidApiUrl { url: api_url.to_owned(), reason };
    let (use_http, rest) = if let Some(rest) = strip_prefix_ignore_case(api_url, "https://") {
        (false, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(api_url, "http://") {
        (true, rest)
    } else {
        return Err(invalid("must start with http:// or https://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("missing host"));
    }
    if rest.contains(['?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err(invalid("must not contain a query, fragment, credentials or spaces"));
    }
    // twilight appends `/api/v10/…` itself.
    if rest.ends_with("/api") || rest.contains("/api/") {
        return Err(invalid("give the origin only; /api/v10 is appended automatically"));
    }
    Ok((use_http, rest))
}

/// Posts `content` in `channel` at most once per `nonce` (see [`create_message_enforced`]).
pub async fn create_message_once(
    http: &Client,
    channel: Id<ChannelMarker>,
    content: &str,
    mentions: &AllowedMentions,
    nonce: &str,
) -> Result<(), twilight_http::Error> {
    let body = serde_json::json!({ "content": content, "allowed_mentions": mentions });
    create_message_enforced(http, channel, body, nonce).await?;
    Ok(())
}

/// Discord's Create Message with `body` (a JSON object: content, components, allowed mentions,
/// message reference…) plus `nonce` and `enforce_nonce: true`, so sending the same nonce again
/// within a few minutes (a retry after a lost answer, a worker re-running the same job or the
/// same event after another worker died) returns the message already created instead of
/// posting a second one. twilight's `create_message` has no `enforce_nonce`, so the request is
/// built here. `nonce` is at most 25 characters.
pub async fn create_message_enforced(
    http: &Client,
    channel: Id<ChannelMarker>,
    mut body: serde_json::Value,
    nonce: &str,
) -> Result<twilight_http::Response<Message>, twilight_http::Error> {
    if let Some(fields) = body.as_object_mut() {
        fields.insert("nonce".to_owned(), nonce.into());
        fields.insert("enforce_nonce".to_owned(), true.into());
    }
    let request = Request::builder(&Route::CreateMessage { channel_id: channel.get() }).json(&body).build()?;
    http.request::<Message>(request).await
}

/// Discord's status and JSON error code of a failed request (`None` when no response came).
pub fn discord_error(e: &twilight_http::Error) -> Option<(u16, Option<u64>)> {
    match e.kind() {
        twilight_http::error::ErrorType::Response { status, error, .. } => Some((
            status.get(),
            match error {
                twilight_http::api_error::ApiError::General(g) => Some(g.code),
                _ => None,
            },
        )),
        _ => None,
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origins() {
        assert_eq!(parse_api_url("https://discord.com").ok(), Some((false, "discord.com")));
        assert_eq!(parse_api_url("https://discord.com/").ok(), Some((false, "discord.com")));
        assert_eq!(parse_api_url("http://127.0.0.1:9000").ok(), Some((true, "127.0.0.1:9000")));
        assert_eq!(parse_api_url("HTTP://localhost:1/prefix/").ok(), Some((true, "localhost:1/prefix")));
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "",
            "discord.com",
            "ws://127.0.0.1:9000",
            "https://",
            "https:///x",
            "https://discord.com/api/v10",
            "https://discord.com?x=1",
            "https://user@discord.com",
            "https://disc ord.com",
        ] {
            assert!(matches!(parse_api_url(url), Err(RestConfigError::InvalidApiUrl { .. })), "{url:?}");
        }
    }

    #[tokio::test]
    async fn builds_with_and_without_token() {
        beacon_http::install_crypto_provider();
        let with = client(Some("abc.def.ghi"), "https://discord.com").expect("with token");
        assert_eq!(with.token(), Some("Bot abc.def.ghi"));
        let prefixed = client(Some("Bot abc"), "http://127.0.0.1:9000").expect("prefixed");
        assert_eq!(prefixed.token(), Some("Bot abc"));
        let without = client(None, "http://127.0.0.1:9000").expect("without token");
        assert_eq!(without.token(), None);
        assert_eq!(without.default_allowed_mentions(), Some(&crate::mentions::none()));
    }

    #[tokio::test]
    async fn rejects_bad_tokens() {
        for token in ["", "   ", "Bot ", "Bot", "abc def", "abc\ndef"] {
            let result = client(Some(token), "https://discord.com").map(|_| ());
            assert!(matches!(result, Err(RestConfigError::InvalidToken)), "{token:?}");
        }
    }

    #[test]
    fn needs_a_runtime() {
        assert!(matches!(client(None, "https://discord.com").map(|_| ()), Err(RestConfigError::NoRuntime)));
    }
}
