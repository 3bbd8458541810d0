//! Discord's OAuth2 as a client: the authorize URL (PKCE S256), the code exchange, refresh,
//! revoke, and the user's identity and guilds (every page, past 200).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most guilds Discord returns in one page of `GET /users/@me/guilds`.
const GUILDS_PAGE: usize = 200;
/// Pages read at most (Discord caps a user at 200 servers, 500 with Nitro; this is a safety net).
const MAX_PAGES: usize = 10;

/// Why a call to Discord failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Discord refused the grant (a used or wrong code, verifier or refresh token; a revoked
    /// or expired token).
    #[error("Discord refused the login: {0}")]
    Refused(String),
    /// Discord answered something unexpected, or could not be reached.
    #[error("Discord could not be reached: {0}")]
    Unavailable(String),
}

/// Largest answer read from Discord's OAuth endpoints, in bytes (a member in many guilds gets a
/// list of at most 200 partial guilds, well under this).
const MAX_OAUTH_BODY: usize = 4 << 20;

/// A JSON answer of Discord's, read within [`MAX_OAUTH_BODY`].
async fn read_json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, OAuthError> {
    let body =
        beacon_http::read_body(resp, MAX_OAUTH_BODY).await.map_err(|e| OAuthError::Unavailable(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| OAuthError::Unavailable(format!("unexpected answer: {e}")))
}

/// Tokens of one grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The bearer token.
    pub access: String,
    /// Renews `access`.
    pub refresh: String,
    /// Unix ms when `access` expires.
    #[serde(skip)]
    pub expires_at: i64,
}

/// A guild the user is in, as `GET /users/@me/guilds` describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserGuild {
    /// The guild's id.
    #[serde(with = "id_str")]
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its icon hash.
    #[serde(default)]
    pub icon: Option<String>,
    /// Whether the user owns it.
    #[serde(default)]
    pub owner: bool,
    /// The user's permissions there (a decimal string, as Discord sends it).
    #[serde(default)]
    pub permissions: String,
}

mod id_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The logged-in user.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscordUser {
    /// Their id.
    #[serde(with = "id_str")]
    pub id: u64,
    /// Their username.
    pub username: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

/// Discord's OAuth2 endpoints for one application.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    /// `https://discord.com` (or the fake's base URL).
    base: String,
    client_id: u64,
    secret: beacon_config::Secret,
}

/// `application/x-www-form-urlencoded`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl OAuthClient {
    /// A client for `client_id`/`secret` against Discord at `base`.
    pub fn new(
        base: &str,
        client_id: u64,
        secret: beacon_config::Secret,
    ) -> Result<OAuthClient, beacon_http::HttpError> {
        let options = beacon_http::ClientOptions {
            follow_redirects: false,
            ..beacon_http::ClientOptions::with_timeout(Duration::from_secs(15))
        };
        Ok(OAuthClient {
            http: beacon_http::client(&options)?,
            base: base.trim_end_matches('/').to_owned(),
            client_id,
            secret,
        })
    }

    /// Where the browser goes to consent: scopes `identify guilds`, PKCE S256.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, challenge: &str) -> String {
        format!(
            "{}/oauth2/authorize?{}",
            self.base,
            form(&[
                ("client_id", &self.client_id.to_string()),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", "identify guilds"),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ])
        )
    }

    async fn token_call(&self, path: &str, fields: &[(&str, &str)]) -> Result<reqwest::Response, OAuthError> {
        self.http
            .post(format!("{}/api/v10/oauth2/{path}", self.base))
            .basic_auth(self.client_id, Some(self.secret.expose()))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.to_string()))
    }

    async fn tokens(&self, fields: &[(&str, &str)]) -> Result<Tokens, OAuthError> {
        let resp = self.token_call("token", fields).await?;
        let status = resp.status();
        if status.is_client_error() {
            let body: serde_json::Value = read_json(resp).await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("unknown").to_owned();
            return Err(if error == "invalid_client" {
                OAuthError::Unavailable("Discord refused the client credentials (BEACON_OAUTH_CLIENT_ID/SECRET)".into())
            } else {
                OAuthError::Refused(error)
            });
        }
        if !status.is_success() {
            return Err(OAuthError::Unavailable(format!("token endpoint answered {status}")));
        }
        let t: TokenResponse = read_json(resp).await?;
        Ok(Tokens {
            access: t.access_token,
            refresh: t.refresh_token,
            expires_at: beacon_store::now_ms() + t.expires_in.saturating_mul(1000),
        })
    }

    /// Exchanges an authorization code with its PKCE verifier.
    pub async fn exchange(&self, code: &str, verifier: &str, redirect_uri: &str) -> Result<Tokens, OAuthError> {
        self.tokens(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Renews an access token.
    pub async fn refresh(&self, refresh: &str) -> Result<Tokens, OAuthError> {
        self.tokens(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await
    }

    /// Revokes the grant `token` belongs to (Discord revokes its access and refresh tokens).
    pub async fn revoke(&self, token: &str) -> Result<(), OAuthError> {
        let resp = self.token_call("token/revoke", &[("token", token), ("token_type_hint", "refresh_token")]).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(OAuthError::Unavailable(format!("revoke answered {}", resp.status())))
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, access: &str, path: &str) -> Result<T, OAuthError> {
        let resp = self
            .http
            .get(format!("{}/api/v10{path}", self.base))
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(OAuthError::Refused(format!("{path} answered {status}")));
        }
        if !status.is_success() {
            return Err(OAuthError::Unavailable(format!("{path} answered {status}")));
        }
        read_json(resp).await
    }

    /// The user the token belongs to.
    pub async fn me(&self, access: &str) -> Result<DiscordUser, OAuthError> {
        self.get(access, "/users/@me").await
    }

    /// Every guild the user is in, page after page (`after` the last id) until a short page.
    pub async fn guilds(&self, access: &str) -> Result<Vec<UserGuild>, OAuthError> {
        let mut all: Vec<UserGuild> = Vec::new();
        for _ in 0..MAX_PAGES {
            let after = all.last().map(|g| format!("&after={}", g.id)).unwrap_or_default();
            let page: Vec<UserGuild> =
                self.get(access, &format!("/users/@me/guilds?limit={GUILDS_PAGE}{after}")).await?;
            let full = page.len() == GUILDS_PAGE;
            all.extend(page);
            if !full {
                break;
            }
        }
        Ok(all)
    }
}
