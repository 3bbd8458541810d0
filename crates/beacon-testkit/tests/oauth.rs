//! OAuth2 user login against the fake, as strict as Discord: consent, PKCE S256, the exact
//! redirect URI, single-use codes, refresh, revoke, client authentication, bearer routes and
//! the guild list's pagination.

mod common;

use base64::Engine;
use beacon_testkit::FakeOptions;
use beacon_testkit::oauth::s256;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/api/v1/auth/callback";
const VERIFIER: &str = "a-very-long-pkce-verifier-of-at-least-forty-three-characters-0123";

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

struct Client {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Client {
    async fn token(&self, pairs: &[(&str, &str)], basic: bool) -> (u16, Value) {
        let mut fields: Vec<(&str, &str)> = pairs.to_vec();
        let mut req = self.http.post(format!("{}/api/v10/oauth2/token", self.base));
        if basic {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.id, self.secret));
            req = req.header("authorization", format!("Basic {b}"));
        } else {
            fields.push(("client_id", &self.id));
            fields.push(("client_secret", &self.secret));
        }
        let resp = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .expect("token request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json"))
    }

    /// Runs authorize + consent as `user`; returns the code.
    async fn code(&self, fake: &beacon_testkit::FakeDiscord, user: u64, challenge: &str) -> String {
        let url = format!(
            "{}/oauth2/authorize?client_id={}&redirect_uri={}&response_type=code&scope=identify%20guilds&state=xyz&code_challenge={challenge}&code_challenge_method=S256",
            self.base,
            self.id,
            form(&[("r", REDIRECT)]).trim_start_matches("r=")
        );
        let consent: Value = self.http.get(url).send().await.expect("authorize").json().await.expect("json");
        let id = consent["authorization_id"].as_str().expect("consent screen");
        let location = fake.oauth_consent(id, user, true).expect("consent");
        assert!(location.starts_with(&format!("{REDIRECT}?code=")), "{location}");
        assert!(location.ends_with("&state=xyz"));
        location.split("code=").nth(1).and_then(|r| r.split('&').next()).expect("code").to_owned()
    }
}

#[tokio::test]
async fn login_with_pkce_refresh_and_revoke_as_discord() {
    let fake = common::start(FakeOptions::default()).await;
    let g = common::guild(&fake);
    let alice = common::member(&g, "alice");
    let owner = common::member(&g, "owner");
    fake.register_redirect_uri(REDIRECT);
    let c = Client {
        http: reqwest::Client::new(),
        base: fake.base_url(),
        id: fake.application_id().to_string(),
        secret: fake.oauth_client_secret(),
    };

    // An unregistered redirect URI is refused at the consent step.
    let resp = c
        .http
        .get(format!(
            "{}/oauth2/authorize?client_id={}&redirect_uri=http%3A%2F%2Fevil.example%2Fcb&response_type=code&scope=identify",
            c.base, c.id
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 400);

    // A wrong verifier is invalid_grant, and the code is then used up.
    let code = c.code(&fake, alice, &s256(VERIFIER)).await;
    let wrong = "b".repeat(50);
    let (status, body) = c
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &wrong),
            ],
            true,
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // A redirect URI that differs from the authorization's is invalid_grant.
    let code = c.code(&fake, alice, &s256(VERIFIER)).await;
    let (status, body) = c
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", VERIFIER),
            ],
            true,
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // The right exchange works once, by Basic auth; the code cannot be replayed.
    let code = c.code(&fake, alice, &s256(VERIFIER)).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, tokens) = c.token(&exchange, true).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "identify guilds");
    let (status, body) = c.token(&exchange, true).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // The bearer token reads the user and their guilds, with owner and permissions.
    let access = tokens["access_token"].as_str().expect("access");
    let me: Value = c
        .http
        .get(format!("{}/api/v10/users/@me", c.base))
        .bearer_auth(access)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], alice.to_string());
    let guilds: Value = c
        .http
        .get(format!("{}/api/v10/users/@me/guilds", c.base))
        .bearer_auth(access)
        .send()
        .await
        .expect("guilds")
        .json()
        .await
        .expect("json");
    assert_eq!(guilds[0]["id"], g.id.to_string());
    assert_eq!(guilds[0]["owner"], false);
    assert!(guilds[0]["permissions"].is_string());

    // Refresh by form auth: the old refresh token is used up and a new access token works.
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let (status, renewed) = c.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], false).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, body) = c.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)], false).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // A wrong client secret is invalid_client.
    let bad = Client { secret: "nope".into(), http: c.http.clone(), base: c.base.clone(), id: c.id.clone() };
    let (status, body) = bad.token(&[("grant_type", "refresh_token"), ("refresh_token", "x")], true).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));

    // Revoking the token ends the grant: the bearer is refused.
    let new_access = renewed["access_token"].as_str().expect("access");
    let resp = c
        .http
        .post(format!("{}/api/v10/oauth2/token/revoke", c.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", new_access), ("client_id", &c.id), ("client_secret", &c.secret)]))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 200);
    let resp = c.http.get(format!("{}/api/v10/users/@me", c.base)).bearer_auth(new_access).send().await.expect("me");
    assert_eq!(resp.status(), 401);
    assert_eq!(fake.oauth_live_grants(alice), 0);
    let _ = owner;
}

#[tokio::test]
async fn the_guild_list_pages_past_200_and_refuses_bigger_pages() {
    let fake = common::start(FakeOptions { route_limit: 1000, ..FakeOptions::default() }).await;
    let g = common::guild(&fake);
    let owner = common::member(&g, "owner");
    let mut ids = fake.join_user_guilds(owner, 230, false, true);
    ids.push(g.id);
    ids.sort_unstable();
    fake.register_redirect_uri(REDIRECT);
    let c = Client {
        http: reqwest::Client::new(),
        base: fake.base_url(),
        id: fake.application_id().to_string(),
        secret: fake.oauth_client_secret(),
    };
    let code = c.code(&fake, owner, &s256(VERIFIER)).await;
    let (_, tokens) = c
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            true,
        )
        .await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let page = |query: String| {
        let http = c.http.clone();
        let url = format!("{}/api/v10/users/@me/guilds{query}", c.base);
        let access = access.clone();
        async move {
            let resp = http.get(url).bearer_auth(access).send().await.expect("guilds");
            (resp.status().as_u16(), resp.json::<Value>().await.expect("json"))
        }
    };
    let (status, _) = page("?limit=201".into()).await;
    assert_eq!(status, 400);
    let (_, first) = page(String::new()).await;
    let first = first.as_array().expect("array").clone();
    assert_eq!(first.len(), 200);
    let last = first[199]["id"].as_str().expect("id").to_owned();
    let (_, second) = page(format!("?after={last}")).await;
    let second = second.as_array().expect("array").clone();
    let all: Vec<u64> =
        first.iter().chain(second.iter()).map(|g| g["id"].as_str().and_then(|s| s.parse().ok()).expect("id")).collect();
    assert_eq!(all, ids);
    let own_id = g.id.to_string();
    let own = first.iter().chain(second.iter()).find(|x| x["id"] == own_id.as_str()).expect("own guild");
    assert_eq!(own["owner"], true);
    let (_, before) = page(format!("?before={}&limit=2", ids[5])).await;
    let before: Vec<&str> = before.as_array().expect("array").iter().filter_map(|g| g["id"].as_str()).collect();
    assert_eq!(before, vec![ids[3].to_string(), ids[4].to_string()]);
}
