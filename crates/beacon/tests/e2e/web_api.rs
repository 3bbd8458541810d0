//! The web API (`/api/v1`) over real HTTP against the fake Discord's OAuth2: login with PKCE and
//! a browser-bound state, cookie flags, CSRF and Origin, sessions, who may manage which guild,
//! settings through the API seen by a running module, rate limits, CORS and the OpenAPI document.

use std::sync::{Arc, Mutex};

use axum::http::Method;
use beacon_framework::settings::{SettingChanged, SettingKind, SettingSpec};
use beacon_framework::{
    Access, ApiGuild, ApiRoute, App, CommandCtx, CommandSpec, HandlerResult, Module, Reply, async_trait,
};
use beacon_testkit::{Delivery, GuildSpec, MemberSpec};
use serde_json::{Value, json};

use crate::harness::*;

/// A module with a setting it reads on every command and a listener, plus one API route of its
/// own (so the module contract's routes are under the same guard).
struct Probe {
    seen: Arc<Mutex<Vec<SettingChanged>>>,
}

#[async_trait]
impl Module for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn description(&self) -> &'static str {
        "Test probe"
    }
    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("probe", "Shows the greeting", Access::Everyone)]
    }
    fn settings(&self) -> Vec<SettingSpec> {
        vec![SettingSpec::new("probe.greeting", SettingKind::String { max_len: 20 }, json!("hello"), "The greeting")]
    }
    fn api_routes(&self, _app: &Arc<App>) -> Vec<ApiRoute> {
        vec![ApiRoute::new(
            Method::GET,
            "/probe/greeting",
            "The probe's greeting in this guild",
            Access::Authorized,
            axum::routing::get(|ctx: ApiGuild| async move {
                let greeting = ctx.app.settings.get_string(&ctx.guild, "probe.greeting").await.unwrap_or_default();
                axum::Json(json!({"guild_id": ctx.guild_id().to_string(), "greeting": greeting}))
            }),
        )]
    }
    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let greeting = ctx.app.settings.get_string(&ctx.guild, "probe.greeting").await?;
        ctx.reply(Reply::text(format!("greeting: {greeting}"))).await
    }
    async fn setting_changed(&self, _app: &Arc<App>, change: &SettingChanged) {
        if change.key == "probe.greeting"
            && let Ok(mut seen) = self.seen.lock()
        {
            seen.push(change.clone());
        }
    }
}

async fn spawn(env: &[(&str, &str)], dev_team: bool) -> (TestApp, Arc<Mutex<Vec<SettingChanged>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let t = TestApp::spawn_with(Options {
        oauth: true,
        dev_team,
        modules: vec![Arc::new(Probe { seen: seen.clone() })],
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Options::default()
    })
    .await;
    (t, seen)
}

fn client() -> reqwest::Client {
    beacon_testkit::install_tls_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The `Set-Cookie` header for `name`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_owned()).unwrap_or_default()
}

/// A browser logged in as one user.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    csrf: String,
}

impl Browser {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .header("cookie", format!("beacon_session={}", self.session))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("cookie", format!("beacon_session={}", self.session))
            .header("x-csrf-token", &self.csrf)
            .header("origin", &self.base);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Starts a login in a fresh browser; returns the login cookie's `Set-Cookie`, and Discord's
/// consent screen URL.
async fn start_login(t: &TestApp, http: &reqwest::Client) -> (String, String) {
    let resp = http.get(format!("http://{}/api/v1/auth/login", t.addr())).send().await.expect("login");
    assert_eq!(resp.status(), 302);
    let login_cookie = set_cookie(&resp, "beacon_login").expect("login cookie");
    let location = resp.headers()["location"].to_str().expect("location").to_owned();
    (login_cookie, location)
}

/// Discord's consent screen, approved by `user`; returns the callback URL.
async fn consent(t: &TestApp, http: &reqwest::Client, authorize: &str, user: u64) -> String {
    let screen: Value = http.get(authorize).send().await.expect("authorize").json().await.expect("consent json");
    let id = screen["authorization_id"].as_str().unwrap_or_else(|| panic!("no consent screen: {screen}"));
    t.fake.oauth_consent(id, user, true).expect("consent")
}

async fn login(t: &TestApp, user: u64) -> Browser {
    let http = client();
    let (login_cookie, authorize) = start_login(t, &http).await;
    let callback = consent(t, &http, &authorize, user).await;
    let resp = http
        .get(&callback)
        .header("cookie", format!("beacon_login={}", cookie_value(&login_cookie)))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
    let session = cookie_value(&set_cookie(&resp, "beacon_session").expect("session cookie"));
    let base = format!("http://{}", t.addr());
    let mut b = Browser { http, base, session, csrf: String::new() };
    let (status, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(status, 200, "{me}");
    b.csrf = me["csrf_token"].as_str().expect("csrf").to_owned();
    b
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?.1.split('&').find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

#[tokio::test]
async fn login_with_pkce_and_a_browser_bound_state_sets_safe_cookies() {
    let (t, _) = spawn(&[], false).await;
    let owner = t.owner();
    let http = client();
    let (login_cookie, authorize) = start_login(&t, &http).await;
    // The state cookie: HttpOnly, SameSite=Lax, only for the auth paths, short-lived; not
    // Secure on an http public URL.
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/api/v1/auth", "Max-Age=600"] {
        assert!(login_cookie.contains(flag), "{login_cookie}");
    }
    assert!(!login_cookie.contains("Secure"), "{login_cookie}");
    // Discord is asked for identify+guilds with PKCE S256 and the very state of the cookie.
    assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", t.fake.base_url())), "{authorize}");
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query_param(&authorize, "scope").as_deref(), Some("identify%20guilds"));
    assert_eq!(query_param(&authorize, "state"), Some(cookie_value(&login_cookie)));
    assert!(query_param(&authorize, "code_challenge").is_some_and(|c| c.len() == 43));

    let callback = consent(&t, &http, &authorize, owner).await;
    let resp = http
        .get(&callback)
        .header("cookie", format!("beacon_login={}", cookie_value(&login_cookie)))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 302);
    let session_cookie = set_cookie(&resp, "beacon_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(flag), "{session_cookie}");
    }
    let cleared = set_cookie(&resp, "beacon_login").expect("login cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(t.fake.oauth_calls("authorization_code"), 1);

    // The database keeps a hash of the session id, and Discord's tokens sealed.
    let id = cookie_value(&session_cookie);
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id_hash, tokens FROM api_sessions")
        .fetch_all(t.app().store.pool())
        .await
        .expect("sessions");
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].0, id);
    assert!(serde_json::from_str::<Value>(&rows[0].1).is_err(), "tokens are sealed, not JSON");

    let b = Browser { http, base: format!("http://{}", t.addr()), session: id, csrf: String::new() };
    let (status, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["id"], owner.to_string());
    assert!(me["csrf_token"].as_str().is_some_and(|c| c.len() >= 32));
    t.stop().await;
}

#[tokio::test]
async fn a_wrong_missing_or_replayed_state_is_refused() {
    let (t, _) = spawn(&[], false).await;
    let owner = t.owner();
    let http = client();

    // Another browser's state: the callback carries a state this browser's cookie does not hold.
    let (mine, _) = start_login(&t, &http).await;
    let (_, theirs) = start_login(&t, &http).await;
    let callback = consent(&t, &http, &theirs, owner).await;
    let resp = http
        .get(&callback)
        .header("cookie", format!("beacon_login={}", cookie_value(&mine)))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_state");

    // No cookie at all.
    let resp = http.get(&callback).send().await.expect("callback");
    assert_eq!(resp.status(), 400);

    // The right one works once; replaying it (same cookie, same URL) is refused before Discord.
    let (cookie, authorize) = start_login(&t, &http).await;
    let callback = consent(&t, &http, &authorize, owner).await;
    let send = || http.get(&callback).header("cookie", format!("beacon_login={}", cookie_value(&cookie))).send();
    assert_eq!(send().await.expect("callback").status(), 302);
    let replay = send().await.expect("replay");
    assert_eq!(replay.status(), 400);
    assert!(set_cookie(&replay, "beacon_session").is_none());
    assert_eq!(t.fake.oauth_calls("authorization_code"), 1, "no second exchange at Discord");
    t.stop().await;
}

#[tokio::test]
async fn csrf_and_origin_guard_every_change_and_logout_revokes() {
    let (t, _) = spawn(&[], false).await;
    let owner = t.owner();
    let b = login(&t, owner).await;
    let g = t.guild.id;
    let patch = format!("/api/v1/guilds/{g}/settings");

    // No token, a wrong token, a foreign Origin: refused, nothing stored.
    let no_token = b
        .http
        .patch(b.url(&patch))
        .header("cookie", format!("beacon_session={}", b.session))
        .json(&json!({"probe.greeting": "hi"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(no_token.status(), 403);
    let body: Value = no_token.json().await.expect("json");
    assert_eq!(body["error"]["code"], "csrf");
    let wrong = b
        .http
        .patch(b.url(&patch))
        .header("cookie", format!("beacon_session={}", b.session))
        .header("x-csrf-token", "0".repeat(43))
        .json(&json!({"probe.greeting": "hi"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(wrong.status(), 403);
    let foreign = b
        .http
        .patch(b.url(&patch))
        .header("cookie", format!("beacon_session={}", b.session))
        .header("x-csrf-token", &b.csrf)
        .header("origin", "https://evil.example")
        .json(&json!({"probe.greeting": "hi"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_origin");
    assert_eq!(t.app().store.guild(g).setting("probe.greeting").await.expect("read"), None);

    // With the token and our Origin it goes through.
    let (status, _) = b.send(reqwest::Method::PATCH, &patch, Some(json!({"probe.greeting": "hi"}))).await;
    assert_eq!(status, 200);

    // Logout needs the token too, then revokes at Discord and ends the session.
    let resp = b
        .http
        .post(b.url("/api/v1/auth/logout"))
        .header("cookie", format!("beacon_session={}", b.session))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 403);
    assert_eq!(t.fake.oauth_live_grants(owner), 1);
    let (status, _) = b.send(reqwest::Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(t.fake.oauth_calls("revoke"), 1);
    assert_eq!(t.fake.oauth_live_grants(owner), 0);
    let (status, body) = b.get("/api/v1/auth/me").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    t.stop().await;
}

#[tokio::test]
async fn who_may_manage_a_guild_follows_discord_and_beacon_access() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let (owner, admin, bob) = (t.owner(), t.member("alice-admin"), t.member("bob"));
    let settings = format!("/api/v1/guilds/{g}/settings");

    // The owner and an Administrator manage the guild; a plain member does not see it.
    for user in [owner, admin] {
        let b = login(&t, user).await;
        let (status, list) = b.get("/api/v1/guilds").await;
        assert_eq!(status, 200);
        let mine: Vec<&Value> = list["guilds"].as_array().expect("guilds").iter().collect();
        assert_eq!(mine.len(), 1, "{list}");
        assert_eq!(mine[0]["id"], g.to_string());
        assert_eq!(mine[0]["beacon_present"], true);
        assert_eq!(mine[0]["access"], "manage");
        assert_eq!(b.get(&settings).await.0, 200);
    }
    let bob_b = login(&t, bob).await;
    let (_, list) = bob_b.get("/api/v1/guilds").await;
    assert_eq!(list["guilds"], json!([]));
    let (status, body) = bob_b.get(&settings).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = bob_b.get(&format!("/api/v1/guilds/{g}/probe/greeting")).await;
    assert_eq!(status, 403, "a module's route is behind the same check");

    // Granted Beacon access through the API (as /access grant does), bob manages it too.
    let owner_b = login(&t, owner).await;
    let (status, _) =
        owner_b.send(reqwest::Method::PUT, &format!("/api/v1/guilds/{g}/authorized-users/{bob}"), None).await;
    assert_eq!(status, 201);
    let (_, users) = owner_b.get(&format!("/api/v1/guilds/{g}/authorized-users")).await;
    let bob_id = bob.to_string();
    assert!(users["authorized_users"].as_array().expect("users").iter().any(|u| u["user_id"] == bob_id.as_str()));
    let (_, list) = bob_b.get("/api/v1/guilds").await;
    assert_eq!(list["guilds"][0]["id"], g.to_string());
    let (status, greeting) = bob_b.get(&format!("/api/v1/guilds/{g}/probe/greeting")).await;
    assert_eq!(status, 200);
    assert_eq!(greeting["guild_id"], g.to_string());
    // Revoked again, he is out; the owner cannot be revoked.
    let (status, _) =
        owner_b.send(reqwest::Method::DELETE, &format!("/api/v1/guilds/{g}/authorized-users/{bob}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(bob_b.get(&settings).await.0, 403);
    let (status, body) =
        owner_b.send(reqwest::Method::DELETE, &format!("/api/v1/guilds/{g}/authorized-users/{owner}"), None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("user_id")));
    t.stop().await;
}

#[tokio::test]
async fn the_developer_team_reads_every_guild_but_changes_nothing() {
    let (t, _) = spawn(&[], true).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    let b = login(&t, bob).await;
    let (_, me) = b.get("/api/v1/auth/me").await;
    assert_eq!(me["developer"], true);
    let (_, list) = b.get("/api/v1/guilds").await;
    let g_id = g.to_string();
    let test_guild = list["guilds"].as_array().expect("guilds").iter().find(|x| x["id"] == g_id.as_str()).cloned();
    assert_eq!(test_guild.expect("listed")["access"], "read_only");
    assert_eq!(b.get(&format!("/api/v1/guilds/{g}/settings")).await.0, 200);
    let (status, body) = b
        .send(reqwest::Method::PATCH, &format!("/api/v1/guilds/{g}/settings"), Some(json!({"probe.greeting": "x"})))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "read_only");

    // The operator views are the team's alone.
    let (status, shards) = b.get("/api/v1/shards").await;
    assert_eq!(status, 200, "{shards}");
    assert!(shards["shards"].as_array().is_some_and(|s| !s.is_empty()));
    let total = shards["shard_count"].as_u64().expect("shard count");
    let entry = shards["guilds"].as_array().expect("guilds").iter().find(|x| x["guild_id"] == g_id.as_str()).cloned();
    assert_eq!(entry.expect("guild listed")["shard"].as_u64(), Some((g >> 22) % total));
    let (status, metrics) = b.get("/api/v1/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics["guilds"].as_i64().is_some_and(|n| n >= 2));
    let (status, models) = b.get("/api/v1/llm/models").await;
    assert_eq!(status, 200, "{models}");
    assert!(models["pricing"].is_array() && models["chain"].is_array(), "{models}");
    let pricing = "/api/v1/llm/models/openai/gpt-test/pricing";
    let (status, body) =
        b.send(reqwest::Method::PUT, pricing, Some(json!({"input": 1_000_000, "output": 4_000_000}))).await;
    assert_eq!(status, 200, "{body}");
    let (_, models) = b.get("/api/v1/llm/models").await;
    let set = models["pricing"].as_array().expect("pricing").iter().find(|p| p["model"] == "gpt-test").cloned();
    assert_eq!(set.expect("new price")["output"], 4_000_000);
    let (status, body) = b
        .send(reqwest::Method::PUT, "/api/v1/llm/models/nope/gpt-test/pricing", Some(json!({"input": 1, "output": 1})))
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("provider")));
    let (status, body) = b.send(reqwest::Method::PUT, pricing, Some(json!({"input": -1, "output": 1}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("body")));

    let owner_b = login(&t, t.owner()).await;
    assert_eq!(owner_b.get("/api/v1/shards").await.0, 403);
    assert_eq!(owner_b.get("/api/v1/metrics").await.0, 403);
    assert_eq!(owner_b.get("/api/v1/llm/models").await.0, 403);
    let (status, _) = owner_b.send(reqwest::Method::PUT, pricing, Some(json!({"input": 0, "output": 0}))).await;
    assert_eq!(status, 403, "only the developer team sets prices");
    t.stop().await;
}

#[tokio::test]
async fn the_guild_list_reads_every_page_and_an_expired_token_is_refreshed() {
    let (t, _) = spawn(&[], false).await;
    let owner = t.owner();
    let others = t.fake.join_user_guilds(owner, 230, false, true);
    let plain = t.fake.join_user_guilds(owner, 3, false, false);
    let b = login(&t, owner).await;
    let (status, list) = b.get("/api/v1/guilds").await;
    assert_eq!(status, 200);
    let ids: Vec<String> =
        list["guilds"].as_array().expect("guilds").iter().map(|g| g["id"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(ids.len(), 231, "every page past 200: {}", ids.len());
    for id in &others {
        assert!(ids.contains(&id.to_string()));
    }
    for id in &plain {
        assert!(!ids.contains(&id.to_string()), "no Manage Server there");
    }
    let absent = list["guilds"].as_array().expect("guilds").iter().filter(|g| g["beacon_present"] == false).count();
    assert_eq!(absent, 230);

    // Time passes: Discord's token expired and the guild list is old. The next request renews
    // the token (a request with the expired one would be refused, ending the session).
    t.fake.expire_oauth_tokens(owner);
    sqlx::query("UPDATE api_sessions SET token_expires_at = 0, guilds_fetched_at = 0")
        .execute(t.app().store.pool())
        .await
        .expect("age the session");
    let (status, list) = b.get("/api/v1/guilds").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["guilds"].as_array().map(Vec::len), Some(231));
    assert_eq!(t.fake.oauth_calls("refresh_token"), 1);
    t.stop().await;
}

#[tokio::test]
async fn settings_patch_is_validated_audited_reverted_and_seen_by_the_running_module() {
    let (t, seen) = spawn(&[], false).await;
    let g = t.guild.id;
    let owner = t.owner();
    let b = login(&t, owner).await;
    let base = format!("/api/v1/guilds/{g}");

    // The schema: type, bounds, default, help.
    let (_, all) = b.get(&format!("{base}/settings")).await;
    let greeting = all["settings"].as_array().expect("settings").iter().find(|s| s["key"] == "probe.greeting").cloned();
    let greeting = greeting.expect("declared setting");
    assert_eq!(greeting["schema"], json!({"type": "string", "max_length": 20}));
    assert_eq!(greeting["value"], "hello");
    assert_eq!(greeting["help"], "The greeting");

    // Invalid values are refused naming the field, and nothing of the batch is stored.
    let (status, body) = b
        .send(
            reqwest::Method::PATCH,
            &format!("{base}/settings"),
            Some(json!({"core.log_channel": [], "probe.greeting": 5})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "probe.greeting");
    assert_eq!(body["error"]["code"], "invalid_value");
    let (status, body) =
        b.send(reqwest::Method::PATCH, &format!("{base}/settings"), Some(json!({"nope.nothing": 1}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unknown_setting")));
    assert_eq!(body["error"]["field"], "nope.nothing");
    assert!(t.app().store.guild(g).setting_audit(None, 10).await.expect("audit").is_empty());

    // A valid change is stored, audited with who made it, and the running module sees it.
    let (status, body) =
        b.send(reqwest::Method::PATCH, &format!("{base}/settings"), Some(json!({"probe.greeting": "welcome"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"][0]["value"], "welcome");
    let out = t.command(owner, "probe", json!([]), Delivery::Http).await;
    assert_eq!(text_of(&out).trim(), "greeting: welcome");
    let changes = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].guild_id, changes[0].actor_id), (g, owner));
    assert_eq!(changes[0].new, json!("welcome"));
    let (_, audit) = b.get(&format!("{base}/settings/audit?key=probe.greeting")).await;
    let entry = audit["audit"][0].clone();
    assert_eq!(entry["actor_id"], owner.to_string());
    assert_eq!(entry["new"], "welcome");

    // Revert puts the default back (audited, announced).
    let id = entry["id"].as_i64().expect("audit id");
    let (status, _) = b.send(reqwest::Method::POST, &format!("{base}/settings/audit/{id}/revert"), None).await;
    assert_eq!(status, 200);
    let out = t.command(owner, "probe", json!([]), Delivery::Http).await;
    assert_eq!(text_of(&out).trim(), "greeting: hello");
    let (status, _) = b.send(reqwest::Method::POST, &format!("{base}/settings/audit/999999/revert"), None).await;
    assert_eq!(status, 404);

    // Modules: switched off and on; a core module cannot be.
    let (status, _) =
        b.send(reqwest::Method::PUT, &format!("{base}/modules/probe"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    let (_, modules) = b.get(&format!("{base}/modules")).await;
    let probe = modules["modules"].as_array().expect("modules").iter().find(|m| m["name"] == "probe").cloned();
    assert_eq!(probe.expect("probe")["enabled"], false);
    // A switched-off module's routes do not serve; switched on again, they do.
    let (status, body) = b.get(&format!("{base}/probe/greeting")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("module_disabled")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("probe")), "{body}");
    let (status, _) =
        b.send(reqwest::Method::PUT, &format!("{base}/modules/probe"), Some(json!({"enabled": true}))).await;
    assert_eq!(status, 200);
    assert_eq!(b.get(&format!("{base}/probe/greeting")).await.0, 200);
    let core = modules["modules"].as_array().expect("modules").iter().find(|m| m["can_disable"] == false).cloned();
    let core = core.expect("a core module")["name"].as_str().expect("name").to_owned();
    let (status, _) =
        b.send(reqwest::Method::PUT, &format!("{base}/modules/{core}"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, 400);
    t.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_cors_is_off_by_default() {
    let (t, _) = spawn(&[("BEACON_API_RATE_LIMIT", "5")], false).await;
    let b = login(&t, t.owner()).await;
    // login's own /auth/me used one of the five.
    let mut last = 0;
    for _ in 0..5 {
        last = b.get("/api/v1/auth/me").await.0;
    }
    assert_eq!(last, 429);
    let resp = b
        .http
        .get(b.url("/api/v1/auth/me"))
        .header("cookie", format!("beacon_session={}", b.session))
        .send()
        .await
        .expect("me");
    assert_eq!(resp.status(), 429);
    assert!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");

    // No CORS headers for another origin unless configured.
    let resp =
        b.http.get(b.url("/api/v1/health")).header("origin", "https://admin.example.com").send().await.expect("health");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    t.stop().await;
}

/// `count` requests to the health endpoint from `127.0.0.1` claiming to forward for `client`;
/// the status of the last.
async fn health_as(http: &reqwest::Client, t: &TestApp, client: &str, count: usize) -> u16 {
    let mut last = 0;
    for _ in 0..count {
        let resp = http
            .get(format!("http://{}/api/v1/health", t.addr()))
            .header("x-forwarded-for", client)
            .send()
            .await
            .expect("health");
        last = resp.status().as_u16();
    }
    last
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    // Per IP: 4 a minute. The test's connections come from 127.0.0.1.
    let (t, _) =
        spawn(&[("BEACON_API_RATE_LIMIT", "1"), ("BEACON_TRUSTED_PROXIES", "127.0.0.0/8, 10.0.0.0/8")], false).await;
    let http = client();
    assert_eq!(health_as(&http, &t, "203.0.113.1", 4).await, 200);
    assert_eq!(health_as(&http, &t, "203.0.113.1", 1).await, 429, "the forwarded client's own limit");
    // Another client behind the same proxy has a limit of its own (through a second trusted hop).
    assert_eq!(health_as(&http, &t, "203.0.113.2, 10.0.0.5", 1).await, 200);
    t.stop().await;

    // Without trusted proxies the header is ignored: every request is 127.0.0.1's.
    let (t, _) = spawn(&[("BEACON_API_RATE_LIMIT", "1")], false).await;
    let http = client();
    assert_eq!(health_as(&http, &t, "203.0.113.1", 4).await, 200);
    assert_eq!(health_as(&http, &t, "203.0.113.2", 1).await, 429, "a forged header picks no new bucket");
    t.stop().await;
}

#[tokio::test]
async fn bodies_are_limited_per_route_with_a_json_error_naming_the_limit() {
    let (t, _) = spawn(&[("BEACON_API_CSV_LIMIT_MB", "1")], false).await;
    let g = t.guild.id;
    let b = login(&t, t.owner()).await;
    // JSON: 256 KiB.
    let big = "x".repeat(300 * 1024);
    let (status, body) = b
        .send(reqwest::Method::PATCH, &format!("/api/v1/guilds/{g}/settings"), Some(json!({"probe.greeting": big})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("body_too_large")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("256 KiB")), "{body}");
    assert_eq!(body["error"]["field"], "body");

    // CSV import: the configured 1 MiB, so a 600 KiB file is imported…
    let csv_of = |rows: usize| {
        let mut csv = String::from("id,question,answer,tags,pinned\n");
        for i in 0..rows {
            csv.push_str(&format!(",Question number {i}?,{},,false\n", "An answer of some length. ".repeat(20)));
        }
        csv
    };
    let import = |csv: String| {
        b.http
            .post(b.url(&format!("/api/v1/guilds/{g}/faq/import")))
            .header("cookie", format!("beacon_session={}", b.session))
            .header("x-csrf-token", &b.csrf)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };
    let csv = csv_of(1100);
    assert!(csv.len() > 500 * 1024 && csv.len() < 1024 * 1024, "{}", csv.len());
    let resp = import(csv).await.expect("import");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!((status, body["added"].as_u64()), (200, Some(1100)), "{body}");
    // … and a 1.2 MiB one is refused, naming the limit.
    let resp = import(csv_of(2300)).await.expect("import");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("body_too_large")), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("1 MiB")), "{body}");
    t.stop().await;
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let (t, _) = spawn(&[("BEACON_API_CORS_ORIGINS", "https://admin.example.com")], false).await;
    let http = client();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("http://{}/api/v1/auth/me", t.addr()))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .send()
    };
    let ok = preflight("https://admin.example.com").await.expect("preflight");
    assert_eq!(
        ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://admin.example.com")
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    t.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_route() {
    let (t, _) = spawn(&[], false).await;
    let http = client();
    let base = format!("http://{}", t.addr());
    let doc: Value =
        http.get(format!("{base}/api/v1/openapi.json")).send().await.expect("doc").json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    // Valid against the OpenAPI Initiative's own schema of 3.1 documents (vendored, see
    // tests/fixtures/README.md).
    let meta: Value = serde_json::from_str(include_str!("../fixtures/openapi-3.1-schema.json")).expect("meta-schema");
    let validator = jsonschema::draft202012::new(&meta).expect("the meta-schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the OpenAPI document is not valid OpenAPI 3.1: {errors:#?}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut ids = std::collections::HashSet::new();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let declared: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for (method, op) in item.as_object().expect("path item") {
            operations += 1;
            assert!(["get", "post", "put", "patch", "delete"].contains(&method.as_str()), "{method}");
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{id} has responses");
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|p| p.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(params, declared, "{id}: path parameters");
            for r in op["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                if let Some(reference) = r["content"]["application/json"]["schema"]["$ref"].as_str() {
                    let name = reference.trim_start_matches("#/components/schemas/");
                    assert!(doc["components"]["schemas"][name].is_object(), "{reference} resolves");
                }
            }
            // Every documented operation is routed: without a session it is refused as
            // unauthenticated (or served, for the public ones), never 404/405.
            let url = format!("{base}{}", path.replace("{guild_id}", &t.guild.id.to_string()).replace(['{', '}'], ""));
            let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let resp = http.request(method, &url).send().await.expect("call");
            let status = resp.status().as_u16();
            assert!(status != 404 && status != 405, "{id}: {url} answered {status}");
            if op.get("security").is_some() {
                assert_eq!(status, 401, "{id} needs a session");
            }
        }
    }
    for required in [
        "/api/v1/health",
        "/api/v1/auth/login",
        "/api/v1/auth/callback",
        "/api/v1/auth/me",
        "/api/v1/auth/logout",
        "/api/v1/guilds",
        "/api/v1/guilds/{guild_id}/settings",
        "/api/v1/guilds/{guild_id}/settings/audit",
        "/api/v1/guilds/{guild_id}/modules",
        "/api/v1/guilds/{guild_id}/authorized-users",
        "/api/v1/guilds/{guild_id}/probe/greeting",
        "/api/v1/guilds/{guild_id}/tickets",
        "/api/v1/guilds/{guild_id}/cases",
        "/api/v1/guilds/{guild_id}/faq",
        "/api/v1/guilds/{guild_id}/usage",
        "/api/v1/guilds/{guild_id}/kb/query",
        "/api/v1/guilds/{guild_id}/kb/sources",
        "/api/v1/shards",
        "/api/v1/metrics",
        "/api/v1/llm/models",
        "/api/v1/llm/models/{provider}/{model}/pricing",
    ] {
        assert!(paths.contains_key(required), "{required} documented");
    }
    assert!(operations >= 16, "{operations}");
    // An unknown API path is a JSON 404; the rest of the server keeps its own.
    let resp = http.get(format!("{base}/api/v1/nope")).send().await.expect("nope");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    t.stop().await;
}

/// One request a user could make against some guild's endpoint.
#[derive(Debug, Clone)]
struct Attempt {
    route: usize,
    /// Which id fills `{audit_id}` / `{user_id}` / `{module}`: one of B's, or a harmless one.
    foreign_ids: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_of_one_guild_never_reads_or_changes_another() {
    use proptest::prelude::*;
    let (t, _) = spawn(&[("BEACON_API_RATE_LIMIT", "100000")], false).await;
    let owner_a = t.owner();
    // Guild B: another server with Beacon, where A's owner is a plain member.
    let b_owner_name = "b-owner";
    let guild_b = t.fake.create_guild(GuildSpec {
        name: "Guild B".into(),
        owner_id: None,
        text_channels: vec!["general".into()],
        roles: vec![],
        members: vec![
            MemberSpec { user_id: None, username: b_owner_name.into(), roles: vec![] },
            MemberSpec { user_id: Some(owner_a), username: "owner".into(), roles: vec![] },
        ],
    });
    let b_id = guild_b.id;
    let store_b = t.app().store.guild(b_id);
    let deadline = tokio::time::Instant::now() + WAIT;
    while store_b.get().await.ok().flatten().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "guild B registered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let b_owner = guild_b.owner_id;
    let secret_value = "b-secret-greeting";
    t.app().settings.set_value(&store_b, "probe.greeting", &json!(secret_value), b_owner).await.expect("B setting");
    store_b.grant(4242, Some(b_owner)).await.expect("B grant");
    let b_audit_id = store_b.setting_audit(None, 1).await.expect("audit")[0].id;
    let snapshot = |store: beacon_store::GuildStore| async move {
        (
            store.settings().await.expect("settings"),
            store.setting_audit(None, 100).await.expect("audit"),
            store.authorized_users().await.expect("users"),
        )
    };
    let before = snapshot(store_b.clone()).await;

    let b = Arc::new(login(&t, owner_a).await);
    let doc: Value = b.http.get(b.url("/api/v1/openapi.json")).send().await.expect("doc").json().await.expect("json");
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path.starts_with("/api/v1/guilds/{guild_id}") {
            for method in item.as_object().expect("item").keys() {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    assert!(routes.len() >= 10);
    let a_id = t.guild.id;
    let handle = tokio::runtime::Handle::current();
    let routes = Arc::new(routes);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 48, ..ProptestConfig::default() });
    let strategy = (0..routes.len(), any::<bool>()).prop_map(|(route, foreign_ids)| Attempt { route, foreign_ids });
    let result = runner.run(&strategy, |attempt| {
        let (method, path) = routes[attempt.route].clone();
        let b = b.clone();
        let (status, body) = tokio::task::block_in_place(|| {
            handle.block_on(async {
                let fill = |p: &str| {
                    let (audit, user, module) = if attempt.foreign_ids {
                        (b_audit_id.to_string(), "4242".to_owned(), "probe".to_owned())
                    } else {
                        ("1".to_owned(), "777".to_owned(), "faq".to_owned())
                    };
                    p.replace("{guild_id}", &b_id.to_string())
                        .replace("{audit_id}", &audit)
                        .replace("{user_id}", &user)
                        .replace("{module}", &module)
                        .replace("{number}", "1")
                        .replace("{entry_id}", "1")
                        .replace("{name}", "docs")
                };
                let url = fill(&path);
                let body = match path.as_str() {
                    p if p.ends_with("/settings") => Some(json!({"probe.greeting": "pwned"})),
                    p if p.contains("/modules/") => Some(json!({"enabled": false})),
                    _ => None,
                };
                let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
                if method == reqwest::Method::GET { b.get(&url).await } else { b.send(method, &url, body).await }
            })
        });
        prop_assert_eq!(status, 403, "{} {} answered {}: {}", method, path, status, body);
        prop_assert!(!body.to_string().contains(secret_value));
        Ok(())
    });
    result.expect("guild B stays out of reach");

    // And through guild A's own endpoints, B's ids reach nothing of B.
    let a = format!("/api/v1/guilds/{a_id}");
    let (status, _) = b.send(reqwest::Method::POST, &format!("{a}/settings/audit/{b_audit_id}/revert"), None).await;
    assert_eq!(status, 404);
    let (status, _) = b.send(reqwest::Method::DELETE, &format!("{a}/authorized-users/4242"), None).await;
    assert_eq!(status, 404);
    let (_, audit) = b.get(&format!("{a}/settings/audit")).await;
    assert!(!audit.to_string().contains(secret_value));
    let (_, greeting) = b.get(&format!("{a}/probe/greeting")).await;
    assert_eq!(greeting["greeting"], "hello");
    assert_eq!(snapshot(store_b).await, before, "guild B unchanged");
    t.stop().await;
}

#[tokio::test]
async fn tickets_are_listed_filtered_and_counted_through_the_module_routes() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    t.open_ticket(bob, "My printer is on fire").await;
    let b = login(&t, t.owner()).await;
    let base = format!("/api/v1/guilds/{g}/tickets");

    let (status, list) = b.get(&base).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["tickets"][0]["number"], 1);
    assert_eq!(list["tickets"][0]["topic"], "My printer is on fire");
    assert_eq!(list["tickets"][0]["opener_id"], bob.to_string());
    let (_, open) = b.get(&format!("{base}?status=open&opener={bob}")).await;
    assert_eq!(open["tickets"].as_array().map(Vec::len), Some(1));
    let (_, closed) = b.get(&format!("{base}?status=closed")).await;
    assert_eq!(closed["tickets"], json!([]));
    let (status, body) = b.get(&format!("{base}?status=maybe")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("status")));

    let (status, one) = b.get(&format!("{base}/1")).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("open")));
    assert_eq!(b.get(&format!("{base}/2")).await.0, 404);
    let (status, body) = b.get(&format!("{base}/1/transcript")).await;
    assert_eq!(status, 404, "no transcript before close: {body}");
    let (status, stats) = b.get(&format!("{base}/stats?days=7")).await;
    assert_eq!((status, stats["opened"].as_i64()), (200, Some(1)));

    // The member who opened it is not a manager of the server: no access.
    let bob_b = login(&t, bob).await;
    assert_eq!(bob_b.get(&base).await.0, 403);
    t.stop().await;
}

#[tokio::test]
async fn login_and_sessions_work_on_postgres_and_redis() {
    let Some(redis) = beacon_testkit::services::redis_url() else { return };
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else { return };
    let (t, seen) =
        spawn(&[("BEACON_DATABASE_URL", &db.url), ("BEACON_REDIS_URL", &redis), ("BEACON_API_RATE_LIMIT", "8")], false)
            .await;
    assert_eq!(t.app().store.backend(), beacon_store::Backend::Postgres);
    let g = t.guild.id;
    let b = login(&t, t.owner()).await;
    // With Redis configured the session lives there, not in the table.
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM api_sessions").fetch_one(t.app().store.pool()).await.expect("count");
    assert_eq!(rows, 0, "sessions are in Redis");
    let (status, body) = b
        .send(reqwest::Method::PATCH, &format!("/api/v1/guilds/{g}/settings"), Some(json!({"probe.greeting": "pg"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0), 1);
    let (status, _) = b.send(reqwest::Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(b.get("/api/v1/auth/me").await.0, 401);
    // The per-cookie limit (8 a minute) is counted in Redis.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(b.get("/api/v1/auth/me").await.0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    t.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn cases_and_the_faq_through_the_module_routes() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let owner = t.owner();
    let bob = t.member("bob");
    let warn = json!([
        {"name": "user", "type": 6, "value": bob.to_string()},
        {"name": "reason", "type": 3, "value": "spamming links"}
    ]);
    t.command(owner, "warn", warn, Delivery::Gateway).await;
    let b = login(&t, owner).await;

    // Cases: the list with filters, one case with its history.
    let (status, cases) = b.get(&format!("/api/v1/guilds/{g}/cases?target={bob}&kind=warn")).await;
    assert_eq!(status, 200, "{cases}");
    assert_eq!(cases["cases"][0]["number"], 1);
    assert_eq!(cases["cases"][0]["reason"], "spamming links");
    let (_, none) = b.get(&format!("/api/v1/guilds/{g}/cases?kind=ban")).await;
    assert_eq!(none["cases"], json!([]));
    let (status, body) = b.get(&format!("/api/v1/guilds/{g}/cases?kind=smite")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("kind")));
    let (_, case) = b.get(&format!("/api/v1/guilds/{g}/cases/1")).await;
    assert!(case["history"].as_array().is_some_and(|h| !h.is_empty()), "{case}");

    // FAQ: create (validated), search, edit, export, import, remove.
    let faq = format!("/api/v1/guilds/{g}/faq");
    let (status, body) = b.send(reqwest::Method::POST, &faq, Some(json!({"question": "", "answer": "x"}))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("question")), "{body}");
    let (status, created) = b
        .send(
            reqwest::Method::POST,
            &faq,
            Some(json!({"question": "How do I reset my password?", "answer": "Use the reset link.", "tags": ["account"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().expect("id");
    let (_, hits) = b.get(&format!("{faq}/search?q=pasword%20reset")).await;
    assert_eq!(hits["hits"][0]["id"].as_u64(), Some(id), "typo-tolerant: {hits}");
    let (status, _) = b
        .send(
            reqwest::Method::PUT,
            &format!("{faq}/{id}"),
            Some(json!({"question": "How do I reset my password?", "answer": "Settings → Reset.", "pinned": true})),
        )
        .await;
    assert_eq!(status, 200);
    let resp = b
        .http
        .get(b.url(&format!("{faq}/export")))
        .header("cookie", format!("beacon_session={}", b.session))
        .send()
        .await
        .expect("export");
    assert!(resp.headers()["content-type"].to_str().unwrap_or("").starts_with("text/csv"));
    let csv = resp.text().await.expect("csv");
    assert!(csv.contains("Settings → Reset."), "{csv}");
    let imported = csv.replace("Settings → Reset.", "Settings → Security → Reset.");
    let resp = b
        .http
        .post(b.url(&format!("{faq}/import")))
        .header("cookie", format!("beacon_session={}", b.session))
        .header("x-csrf-token", &b.csrf)
        .header("content-type", "text/csv")
        .body(imported)
        .send()
        .await
        .expect("import");
    assert_eq!(resp.status(), 200);
    let (_, entry) = b.get(&format!("{faq}/{id}")).await;
    assert_eq!(entry["answer"], "Settings → Security → Reset.");
    let (_, list) = b.get(&faq).await;
    assert_eq!(list["total"], 1);
    let (status, _) = b.send(reqwest::Method::DELETE, &format!("{faq}/{id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(b.get(&format!("{faq}/{id}")).await.0, 404);
    let (status, gaps) = b.get(&format!("{faq}/gaps?days=7")).await;
    assert_eq!(status, 200, "{gaps}");

    // AI usage against the budget (no AI calls yet: empty, with the deployment's default budget).
    let (status, usage) = b.get(&format!("/api/v1/guilds/{g}/usage?days=7")).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["by_day"], json!([]));
    assert_eq!(usage["budget"]["daily_cost_micros"], 1_000_000, "{usage}");
    let (status, body) = b.get(&format!("/api/v1/guilds/{g}/usage?days=0")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("days")));
    t.stop().await;
}

#[tokio::test]
async fn the_knowledge_base_playground_shows_passages_with_scores_and_sources() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("account.md"),
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen.\n",
    )
    .expect("write");
    // A configured folder source (as an operator's /kb add-folder makes), synced through the API.
    let folder = serde_json::json!({ "path": dir.path() });
    beacon_kb::store::KbRepo::new(t.app().store.guild(g))
        .upsert_source("folder", "docs", &folder, 3_600_000, beacon_store::now_ms())
        .await
        .expect("source");
    let b = login(&t, t.owner()).await;
    let (status, sync) = b.send(reqwest::Method::POST, &format!("/api/v1/guilds/{g}/kb/sources/docs/sync"), None).await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["written"], 1);
    let (status, _) = b.send(reqwest::Method::POST, &format!("/api/v1/guilds/{g}/kb/sources/nope/sync"), None).await;
    assert_eq!(status, 404);

    let (status, out) = b.get(&format!("/api/v1/guilds/{g}/kb/query?q=how%20do%20I%20reset%20my%20password&k=3")).await;
    assert_eq!(status, 200, "{out}");
    let first = &out["passages"][0];
    assert_eq!(first["document"], "account.md");
    assert!(first["text"].as_str().is_some_and(|t| t.contains("Forgot password")), "{out}");
    assert!(first["score"].as_f64().is_some() && first["bm25_score"].as_f64().is_some(), "{out}");
    let (status, body) = b.get(&format!("/api/v1/guilds/{g}/kb/query?q=")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("q")));
    let (status, sources) = b.get(&format!("/api/v1/guilds/{g}/kb/sources")).await;
    assert_eq!(status, 200, "{sources}");
    assert_eq!(sources["sources"][0]["name"], "docs");
    assert_eq!(sources["sources"][0]["status"], "synced");
    assert!(sources["sources"][0].get("config").is_none(), "configuration is not shown");

    // Removing the source removes its passages.
    let (status, _) = b.send(reqwest::Method::DELETE, &format!("/api/v1/guilds/{g}/kb/sources/docs"), None).await;
    assert_eq!(status, 204);
    let (_, out) = b.get(&format!("/api/v1/guilds/{g}/kb/query?q=reset%20password")).await;
    assert_eq!(out["passages"], json!([]), "{out}");
    t.stop().await;
}

#[tokio::test]
async fn the_faq_search_log_is_served_redacted_and_expires_with_its_retention() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    let b = login(&t, t.owner()).await;
    let faq = format!("/api/v1/guilds/{g}/faq");
    let (status, _) = b
        .send(
            reqwest::Method::POST,
            &faq,
            Some(json!({"question": "How do I reset my password?", "answer": "Use the reset link."})),
        )
        .await;
    assert_eq!(status, 201);
    // Members search in Discord; each search is logged with how much it found.
    for q in ["reset password", "dark mode", "invoice for bob.smith@example.com"] {
        let search = json!([{"name": "search", "type": 1, "options": [{"name": "query", "type": 3, "value": q}]}]);
        t.command(bob, "faq", search, Delivery::Http).await;
    }
    let (status, log) = b.get(&format!("{faq}/searches?days=7")).await;
    assert_eq!(status, 200, "{log}");
    let searches = log["searches"].as_array().cloned().unwrap_or_default();
    let terms: Vec<(&str, bool)> =
        searches.iter().map(|s| (s["term"].as_str().unwrap_or(""), s["found"] == true)).collect();
    assert_eq!(terms, vec![("invoice for email", false), ("dark mode", false), ("reset password", true)], "{log}");
    assert!(!log.to_string().contains("example"), "personal data redacted: {log}");
    assert!(searches[2]["hits"].as_u64().is_some_and(|h| h >= 1), "{log}");
    // Beside it, the gaps.
    let (_, gaps) = b.get(&format!("{faq}/gaps?days=7")).await;
    assert_eq!(gaps["gaps"].as_array().map(Vec::len), Some(2), "{gaps}");
    let (status, body) = b.get(&format!("{faq}/searches?limit=0")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("limit")));

    // The log is kept for `faq.search_log_retention` (90 days by default), then expires.
    let later = beacon_store::now_ms() + 91 * 86_400_000;
    let expired = t.app().enforce_retention(later).await.expect("retention");
    assert!(expired.iter().any(|e| e.module == "faq" && e.rows == 3), "{expired:?}");
    let (_, log) = b.get(&format!("{faq}/searches?days=7")).await;
    assert_eq!(log["searches"], json!([]), "{log}");
    t.stop().await;
}

#[tokio::test]
async fn kb_sources_are_added_through_the_api_with_credentials_sealed() {
    let (t, _) = spawn(&[], false).await;
    let g = t.guild.id;
    let b = login(&t, t.owner()).await;
    let url = format!("/api/v1/guilds/{g}/kb/sources");
    let add = |body: Value| b.send(reqwest::Method::POST, &url, Some(body));

    // A website needs no secret.
    let (status, body) =
        add(json!({"name": "docs", "kind": "website", "config": {"url": "https://docs.example.com/"}})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["name"].as_str(), body["kind"].as_str()), (Some("docs"), Some("website")));
    // Validation errors name the field.
    for (request, field) in [
        (json!({"name": "", "kind": "website", "config": {"url": "https://a.example/"}}), "name"),
        (json!({"name": "x", "kind": "gopher", "config": {}}), "kind"),
        (json!({"name": "x", "kind": "website", "config": {}}), "config.url"),
        (json!({"name": "x", "kind": "website", "config": {"url": "ftp://a.example/"}}), "config.url"),
        (json!({"name": "x", "kind": "website", "config": {"url": "https://a.example/", "path": "/"}}), "config.path"),
        (
            json!({"name": "x", "kind": "website", "config": {"url": "https://a.example/"}, "credential": "abcdefgh"}),
            "credential",
        ),
        (json!({"name": "x", "kind": "notion", "config": {}, "credential": "secret_abcdefgh"}), "config.pages"),
        (json!({"name": "x", "kind": "notion", "config": {"pages": "abc123"}}), "credential"),
        (json!({"name": "faq", "kind": "website", "config": {"url": "https://a.example/"}}), "name"),
    ] {
        let (status, body) = add(request.clone()).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{request}: {body}");
    }
    // A folder reads the bot's host: the operators' alone.
    let (status, body) = add(json!({"name": "host", "kind": "folder", "config": {"path": "/etc"}})).await;
    assert_eq!((status, body["error"]["field"].as_str()), (403, Some("kind")), "{body}");

    // Notion with the guild's own credential: stored sealed for this guild and name.
    let secret = "secret_notion_token_123456";
    let (status, body) =
        add(json!({"name": "wiki", "kind": "notion", "config": {"pages": "abc123"}, "credential": secret})).await;
    assert_eq!(status, 201, "{body}");
    let rows = beacon_kb::store::KbRepo::new(t.app().store.guild(g)).sources().await.expect("sources");
    let wiki = rows.iter().find(|s| s.name == "wiki").expect("wiki stored");
    let sealed = wiki.config["credential"].as_str().expect("a sealed credential");
    assert!(!sealed.contains(secret) && !wiki.config.to_string().contains(secret), "{}", wiki.config);
    let keyring = t.app().keyring.clone().expect("keyring");
    assert_eq!(keyring.open(sealed, &beacon_kb::source::Credentials::aad(g, "wiki")).expect("opens"), secret);
    let (_, listed) = b.get(&url).await;
    let names: Vec<&str> =
        listed["sources"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(!listed.to_string().contains("credential"), "configuration is never shown: {listed}");
    t.stop().await;
}

/// A dashboard page as the browser gets it: status, `Retry-After` and HTML.
async fn page(b: &Browser, path: &str, forwarded_for: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = b.http.get(b.url(path));
    if !b.session.is_empty() {
        req = req.header("cookie", format!("beacon_session={}", b.session));
    }
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().await.expect("page");
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry, resp.text().await.expect("html"))
}

#[tokio::test]
async fn dashboard_pages_are_rate_limited_per_ip_with_a_page_that_says_when_to_come_back() {
    // BEACON_API_RATE_LIMIT pages a minute per address: 3 here. The login page (no session);
    // a logged-in page is counted the same way (see pages_do_not_spend_the_sessions_api_budget).
    let (t, _) = spawn(&[("BEACON_API_RATE_LIMIT", "3")], false).await;
    let b =
        Browser { http: client(), base: format!("http://{}", t.addr()), session: String::new(), csrf: String::new() };
    for _ in 0..3 {
        // A forged X-Forwarded-For (no trusted proxy) picks no new bucket.
        let (status, _, _) = page(&b, "/", Some("203.0.113.9")).await;
        assert_eq!(status, 200);
    }
    let (status, retry, html) = page(&b, "/", Some("203.0.113.10")).await;
    assert_eq!(status, 429, "{html}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
    assert!(html.contains("A short pause, please") && html.contains("Wait"), "{html}");
    // Static files are not counted.
    let css = b.http.get(b.url("/static/htmx-2.0.11.min.js")).send().await.expect("htmx");
    assert_eq!(css.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn pages_do_not_spend_the_sessions_api_budget() {
    // 6 a minute: 6 pages per address, 6 API requests per session (24 per address).
    let (t, _) = spawn(&[("BEACON_API_RATE_LIMIT", "6")], false).await;
    let b = login(&t, t.owner()).await;
    // Each settings page reads the API several times in-process (me, guilds, modules, settings,
    // history, the server's channels and roles): 5 pages are far more than 6 API requests.
    for _ in 0..5 {
        let (status, _, html) = page(&b, &format!("/g/{}/settings", t.guild.id), None).await;
        assert_eq!(status, 200, "a person browsing is not held back by the API's limit: {html}");
    }
    // The session's API budget is whole but for login's own /auth/me: 5 more requests pass…
    for i in 0..5 {
        let (status, body) = b.get("/api/v1/auth/me").await;
        assert_eq!(status, 200, "API request {i} after browsing: {body}");
    }
    // …and the API's limit still holds for a real API client.
    let (status, body) = b.get("/api/v1/auth/me").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // The pages keep their own limit: the sixth page of the minute passes, the seventh waits.
    let (status, _, _) = page(&b, &format!("/g/{}/access", t.guild.id), None).await;
    assert_eq!(status, 200);
    let (status, retry, html) = page(&b, &format!("/g/{}/access", t.guild.id), None).await;
    assert_eq!(status, 429, "{html}");
    assert!(retry.is_some() && html.contains("A short pause, please"), "{html}");
    t.stop().await;
}

#[tokio::test]
async fn the_shards_page_is_the_developer_teams_and_refreshes_a_fragment() {
    let (t, _) = spawn(&[], true).await;
    let owner = login(&t, t.owner()).await;
    let (status, _, html) = page(&owner, "/shards", None).await;
    assert_eq!(status, 403, "a server owner is not of the developer team: {html}");
    assert!(!html.contains("Server → shard"));
    let (_, _, home) = page(&owner, "/", None).await;
    assert!(!home.contains("href=\"/shards\""), "no Shards link for others");

    let dev = login(&t, t.member("bob")).await;
    let (_, _, home) = page(&dev, "/", None).await;
    assert!(home.contains("href=\"/shards\""), "the developer team sees the link");
    let (status, _, html) = page(&dev, "/shards", None).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("hx-get=\"/shards/live\"") && html.contains("hx-trigger=\"every 5s\""), "{html}");
    assert!(html.contains(&t.guild.id.to_string()), "the guild → shard map: {html}");
    let (status, _, fragment) = page(&dev, "/shards/live", None).await;
    assert_eq!(status, 200);
    assert!(fragment.starts_with("<div id=\"shards-live\"") && !fragment.contains("<html"), "{fragment}");
    assert!(fragment.contains(&format!("{}</td>", t.guild.name)), "the map names the server: {fragment}");
    t.stop().await;
}
