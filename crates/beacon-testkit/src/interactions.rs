//! Interactions: payloads, signed HTTP delivery, gateway delivery, the initial-response
//! deadline, `@original` edits and follow-ups.

use crate::error::Error;
use crate::handlers::{self, Reply};
use crate::json;
use crate::rest::Query;
use crate::server::Shared;
use crate::state::{InteractionRec, State};
use crate::types::{Delivery, InteractionHandle, InteractionOutcome};
use crate::validate::Matched;
use ed25519_dalek::Signer;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Interaction tokens stay valid this long.
const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// What the scenario API wants to deliver.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub kind: u8,
    pub guild_id: u64,
    pub channel_id: u64,
    pub user_id: u64,
    pub data: Value,
    pub message_id: Option<u64>,
    pub permissions: Option<u64>,
}

pub(crate) fn random_token() -> String {
    let bytes: Vec<u8> = (0..40).map(|_| fastrand::u8(..)).collect();
    format!("aW50ZXJhY3Rpb246{}", hex::encode(bytes))
}

/// Build the interaction payload and register it (`guild_id` 0: in the user's DM with the bot).
pub fn create(sh: &Shared, st: &mut State, ni: &NewInteraction) -> Result<(InteractionHandle, Value), Error> {
    if ni.guild_id == 0 {
        return create_in_dm(sh, st, ni);
    }
    let guild = st.guilds.get(&ni.guild_id).ok_or_else(|| Error::NotFound(format!("guild {}", ni.guild_id)))?;
    let member = guild
        .members
        .get(&ni.user_id)
        .ok_or_else(|| Error::NotFound(format!("member {} of guild {}", ni.user_id, ni.guild_id)))?;
    let channel = st
        .channels
        .get(&ni.channel_id)
        .filter(|c| c.guild_id == Some(ni.guild_id))
        .ok_or_else(|| Error::NotFound(format!("channel {} in guild {}", ni.channel_id, ni.guild_id)))?;
    let perms = ni.permissions.unwrap_or_else(|| st.member_permissions(ni.guild_id, ni.user_id));
    let app_perms = st.member_permissions(ni.guild_id, sh.bot_id());
    let mut member_json = json::member(st, member);
    member_json["permissions"] = json!(perms.to_string());
    let mut channel_json = json::channel(st, channel);
    channel_json["permissions"] = json!(perms.to_string());
    let id = sh.ids.next();
    let token = random_token();
    let payload = json!({
        "id": id.to_string(),
        "application_id": sh.app_id.to_string(),
        "type": ni.kind,
        "token": token,
        "version": 1,
        "guild_id": ni.guild_id.to_string(),
        "guild": {"id": ni.guild_id.to_string(), "locale": "en-US", "features": []},
        "channel_id": ni.channel_id.to_string(),
        "channel": channel_json,
        "member": member_json,
        "data": ni.data,
        "app_permissions": app_perms.to_string(),
        "locale": st.locales.get(&ni.user_id).map_or("en-US", String::as_str),
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": ni.guild_id.to_string()},
        "context": 0,
        "attachment_size_limit": 26_214_400,
    });
    record(st, ni, id, token, payload)
}

/// A component or modal in the DM channel between the bot and `ni.user_id`: no guild, no
/// member, the user themselves, and `context` 1 (BOT_DM).
fn create_in_dm(sh: &Shared, st: &mut State, ni: &NewInteraction) -> Result<(InteractionHandle, Value), Error> {
    let channel = st
        .channels
        .get(&ni.channel_id)
        .filter(|c| c.kind == 1 && c.recipients == vec![ni.user_id])
        .ok_or_else(|| Error::NotFound(format!("DM channel {} of user {}", ni.channel_id, ni.user_id)))?;
    let id = sh.ids.next();
    let token = random_token();
    let payload = json!({
        "id": id.to_string(),
        "application_id": sh.app_id.to_string(),
        "type": ni.kind,
        "token": token,
        "version": 1,
        "channel_id": ni.channel_id.to_string(),
        "channel": json::channel(st, channel),
        "user": json::user_by_id(st, ni.user_id),
        "data": ni.data,
        "app_permissions": "0",
        "locale": st.locales.get(&ni.user_id).map_or("en-US", String::as_str),
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 1,
        "attachment_size_limit": 26_214_400,
    });
    record(st, ni, id, token, payload)
}

/// Attaches the message a component was used on and records the interaction under its token.
fn record(
    st: &mut State,
    ni: &NewInteraction,
    id: u64,
    token: String,
    mut payload: Value,
) -> Result<(InteractionHandle, Value), Error> {
    if let Some(mid) = ni.message_id {
        let msg = st
            .message(ni.channel_id, mid)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("message {mid} in channel {}", ni.channel_id)))?;
        payload["message"] = msg;
    }
    st.interactions.insert(
        id,
        InteractionRec {
            id,
            token: token.clone(),
            kind: ni.kind,
            created: Instant::now(),
            channel_id: ni.channel_id,
            message_id: ni.message_id,
            initial: None,
            original_id: None,
            edit: None,
            followups: Vec::new(),
            delivery_error: None,
        },
    );
    st.tokens.insert(token.clone(), id);
    Ok((InteractionHandle { id, token, kind: ni.kind }, payload))
}

/// `resolved` for user, channel, role and mentionable options.
pub fn resolved(st: &State, guild_id: u64, options: &Value) -> Option<Value> {
    fn walk(st: &State, guild_id: u64, opts: &Value, out: &mut Map<String, Value>) {
        for o in opts.as_array().into_iter().flatten() {
            let id = o["value"].as_str().and_then(|s| s.parse::<u64>().ok());
            let guild = st.guilds.get(&guild_id);
            match (o["type"].as_u64(), id) {
                (Some(1 | 2), _) => walk(st, guild_id, &o["options"], out),
                (Some(6 | 9), Some(id)) if st.users.contains_key(&id) => {
                    insert(out, "users", id, json::user_by_id(st, id));
                    if let Some(m) = guild.and_then(|g| g.members.get(&id)) {
                        let mut mj = json::member_partial(m);
                        mj["permissions"] = json!(st.member_permissions(guild_id, id).to_string());
                        insert(out, "members", id, mj);
                    }
                }
                (Some(7), Some(id)) => {
                    if let Some(c) = st.channels.get(&id) {
                        let mut cj = json!({"id": id.to_string(), "name": c.name, "type": c.kind, "permissions": "0"});
                        if let Some(p) = c.parent_id {
                            cj["parent_id"] = json!(p.to_string());
                        }
                        insert(out, "channels", id, cj);
                    }
                }
                (Some(8 | 9), Some(id)) => {
                    if let Some(r) = guild.and_then(|g| g.roles.iter().find(|r| r.id == id)) {
                        insert(out, "roles", id, json::role(r));
                    }
                }
                // Docs (Attachment Object): a command's file arrives as an ephemeral attachment
                // with a signed CDN URL.
                (Some(11), Some(id)) => {
                    if let Some(f) = st.files.get(&id) {
                        let mut a = json!({
                            "id": id.to_string(),
                            "filename": f.filename,
                            "size": f.bytes.len(),
                            "url": f.url,
                            "proxy_url": f.url,
                            "ephemeral": true,
                        });
                        if let Some(ct) = &f.content_type {
                            a["content_type"] = json!(ct);
                        }
                        insert(out, "attachments", id, a);
                    }
                }
                _ => {}
            }
        }
    }
    fn insert(out: &mut Map<String, Value>, kind: &str, id: u64, v: Value) {
        if let Some(map) = out.entry(kind).or_insert_with(|| json!({})).as_object_mut() {
            map.insert(id.to_string(), v);
        }
    }
    let mut out = Map::new();
    walk(st, guild_id, options, &mut out);
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Send the interaction to the bot.
pub async fn deliver(sh: Arc<Shared>, handle: &InteractionHandle, payload: Value, via: Delivery) -> Result<(), Error> {
    match via {
        Delivery::Gateway => {
            let mut st = sh.lock();
            let guild = payload["guild_id"].as_str().and_then(|g| g.parse::<u64>().ok());
            let reachable = st.sessions.values().any(|s| {
                s.resumable && guild.is_none_or(|g| ((g >> 22) % u64::from(s.shard.1.max(1))) as u32 == s.shard.0)
            });
            if !reachable {
                st.interactions.remove(&handle.id);
                return Err(Error::Invalid("no gateway session for this guild's shard; connect the bot first".into()));
            }
            st.dispatch(sh.bot_id(), guild, "INTERACTION_CREATE", &payload, 0);
            drop(st);
            sh.notify();
            Ok(())
        }
        Delivery::Http => {
            if sh.lock().endpoint.is_none() {
                return Err(Error::Endpoint("no interactions endpoint set (set_interactions_endpoint)".into()));
            }
            let id = handle.id;
            tokio::spawn(async move {
                if let Err(e) = deliver_http(&sh, id, &payload).await {
                    let mut st = sh.lock();
                    st.violation(None, "INTERACTION", "interactions endpoint", e.clone());
                    if let Some(rec) = st.interactions.get_mut(&id) {
                        rec.delivery_error = Some(e);
                    }
                    drop(st);
                    sh.notify();
                }
            });
            Ok(())
        }
    }
}

/// POST a signed body; returns status, content type and body.
async fn post_signed(
    sh: &Shared,
    url: &str,
    body: &str,
    key: &ed25519_dalek::SigningKey,
) -> Result<(u16, String, Vec<u8>), String> {
    let timestamp = (crate::snowflake::now_ms() / 1000).to_string();
    let mut msg = timestamp.as_bytes().to_vec();
    msg.extend_from_slice(body.as_bytes());
    let signature = key.sign(&msg);
    let resp = sh
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "Discord-Interactions/1.0 (+https://discord.com)")
        .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
        .header("x-signature-timestamp", timestamp)
        .body(body.to_owned())
        .timeout(sh.opts.interaction_deadline + Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| format!("POST {url} failed: {e}"))?;
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = resp.bytes().await.map_err(|e| format!("reading the endpoint's answer: {e}"))?;
    Ok((status, ct, bytes.to_vec()))
}

/// Discord checks a new endpoint with a PING and with a request whose signature is wrong.
async fn verify_endpoint(sh: &Shared, url: &str) -> Result<(), String> {
    let _guard = sh.endpoint_check.lock().await;
    if sh.lock().endpoint_verified.as_deref() == Some(url) {
        return Ok(());
    }
    let ping = json!({
        "id": sh.ids.next().to_string(),
        "application_id": sh.app_id.to_string(),
        "type": 1,
        "token": random_token(),
        "version": 1,
        "user": json::user_by_id(&sh.lock(), 1),
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 26_214_400,
    })
    .to_string();
    let (status, _, body) = post_signed(sh, url, &ping, &sh.signing).await?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 || answer["type"].as_u64() != Some(1) {
        return Err(format!("PING must be answered 200 {{\"type\":1}}, got {status} {answer}"));
    }
    let wrong = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let (status, _, _) = post_signed(sh, url, &ping, &wrong).await?;
    if status != 401 {
        let reason = format!("endpoint answered {status} to a request with an invalid signature (must be 401)");
        sh.lock().violation(None, "INTERACTION", url, reason);
    }
    sh.lock().endpoint_verified = Some(url.to_owned());
    Ok(())
}

async fn deliver_http(sh: &Arc<Shared>, id: u64, payload: &Value) -> Result<(), String> {
    let url = sh.lock().endpoint.clone().ok_or("no interactions endpoint set")?;
    verify_endpoint(sh, &url).await?;
    let (status, ct, body) = post_signed(sh, &url, &payload.to_string(), &sh.signing).await?;
    if status != 200 {
        return Err(format!("endpoint answered {status} to an interaction (must be 200 with the response)"));
    }
    let answer = crate::rest::parse_body(&ct, &body).map_err(|e| format!("endpoint response: {e}"))?;
    let path = format!("/interactions/{id}/<token>/callback (HTTP response)");
    let matched = sh.routes.find("POST", &format!("/interactions/{id}/t/callback")).ok_or("no callback route")?;
    if let Some(reply) = crate::rest::validate_body(sh, &matched, "POST", &path, &answer) {
        return Err(format!("invalid interaction response: {}", reply.body.unwrap_or_default()));
    }
    let reply = {
        let mut st = sh.lock();
        apply_initial(sh, &mut st, id, &answer, &Query::new())
    };
    if let Some(v) = reply.violation {
        sh.lock().violation(Some("create_interaction_response"), "POST", &path, v);
    }
    sh.notify();
    Ok(())
}

fn allowed_responses(kind: u8) -> &'static [u64] {
    match kind {
        1 => &[1],
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        5 => &[4, 5, 6, 7],
        _ => &[],
    }
}

/// The initial response (callback or HTTP answer).
pub fn apply_initial(sh: &Shared, st: &mut State, id: u64, body: &Value, q: &Query) -> Reply {
    let Some(rec) = st.interactions.get(&id).cloned() else {
        return Reply::violation(404, 10062, "Unknown interaction", format!("interaction {id} does not exist"));
    };
    if rec.initial.is_some() {
        return Reply::violation(
            400,
            40060,
            "Interaction has already been acknowledged.",
            format!("interaction {id} answered twice"),
        );
    }
    let elapsed = rec.created.elapsed();
    if elapsed > sh.opts.interaction_deadline {
        return Reply::violation(
            404,
            10062,
            "Unknown interaction",
            format!(
                "initial response after {} ms (deadline {} ms)",
                elapsed.as_millis(),
                sh.opts.interaction_deadline.as_millis()
            ),
        );
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    if !allowed_responses(rec.kind).contains(&kind) {
        return Reply::violation(
            400,
            50035,
            "Invalid Form Body",
            format!("response type {kind} is not allowed for interaction type {}", rec.kind),
        );
    }
    let data = if body["data"].is_object() { body["data"].clone() } else { json!({}) };
    let bot = sh.bot_id();
    let mut original = None;
    let mut message = Value::Null;
    match kind {
        4 | 5 => {
            let mut msg_body = data.clone();
            if kind == 5 {
                let flags = data["flags"].as_u64().unwrap_or(0) & 64;
                msg_body = json!({"content": "", "flags": flags | 128});
            }
            let mut msg = handlers::post_message(sh, st, rec.channel_id, bot, &msg_body, Some(sh.app_id));
            msg["interaction_metadata"] = json!({"id": id.to_string(), "type": rec.kind, "user": msg["author"].clone(), "authorizing_integration_owners": {}});
            original = msg["id"].as_str().and_then(|s| s.parse::<u64>().ok());
            message = msg;
        }
        6 => original = rec.message_id,
        7 => {
            if let Some(mid) = rec.message_id {
                let r = handlers::edit_message(sh, st, rec.channel_id, mid, &data);
                message = r.body.unwrap_or_default();
            }
            original = rec.message_id;
        }
        _ => {}
    }
    if let Some(r) = st.interactions.get_mut(&id) {
        r.initial = Some((kind as u8, data));
        r.original_id = original;
    }
    if q.get("with_response").is_some_and(|v| v == "true") {
        let mut resource = json!({"type": kind});
        if !message.is_null() {
            resource["message"] = message;
        }
        return Reply::ok(json!({
            "interaction": {
                "id": id.to_string(),
                "type": rec.kind,
                "activity_instance_id": null,
                "response_message_id": original.map(|o| o.to_string()),
                "response_message_loading": kind == 5,
                "response_message_ephemeral": false,
            },
            "resource": resource,
        }));
    }
    Reply::empty()
}

fn rec_by_token<'a>(sh: &Shared, st: &'a State, m: &Matched) -> Result<&'a InteractionRec, Reply> {
    if m.id("webhook_id") != sh.app_id {
        return Err(Reply::error(404, 10015, "Unknown Webhook"));
    }
    let token = m.params.get("webhook_token").map(String::as_str).unwrap_or_default();
    let rec = st
        .tokens
        .get(token)
        .and_then(|id| st.interactions.get(id))
        .ok_or_else(|| Reply::error(404, 10015, "Unknown Webhook"))?;
    if rec.created.elapsed() > TOKEN_TTL {
        return Err(Reply::violation(
            401,
            50027,
            "Invalid Webhook Token",
            "interaction token used after 15 minutes".into(),
        ));
    }
    Ok(rec)
}

/// `POST /webhooks/{id}/{token}` on a channel webhook: the message is posted in its channel as
/// the webhook (no bot token needed; a wrong token is Discord's 10015). Without `wait=true`
/// Discord answers 204 with no body.
fn execute_channel_webhook(sh: &Shared, st: &mut State, m: &Matched, q: &Query, body: &Value) -> Reply {
    let id = m.id("webhook_id");
    let token = m.params.get("webhook_token").map(String::as_str).unwrap_or_default();
    let Some(channel_id) = st.webhooks.get(&id).filter(|(t, _)| t == token).map(|(_, c)| *c) else {
        return Reply::error(404, 10015, "Unknown Webhook");
    };
    let msg = handlers::post_message(sh, st, channel_id, id, body, None);
    if q.get("wait").is_some_and(|w| w == "true") { Reply::ok(msg) } else { Reply::empty() }
}

/// Interaction callback and webhook-token operations.
pub fn handle_rest(sh: &Shared, st: &mut State, m: &Matched, q: &Query, body: &Value) -> Reply {
    if m.op.id == "create_interaction_response" {
        let id = m.id("interaction_id");
        let token = m.params.get("interaction_token").map(String::as_str).unwrap_or_default();
        if st.interactions.get(&id).is_none_or(|r| r.token != token) {
            return Reply::violation(404, 10062, "Unknown interaction", format!("no interaction {id} with this token"));
        }
        return apply_initial(sh, st, id, body, q);
    }
    if m.op.id == "execute_webhook" && m.id("webhook_id") != sh.app_id {
        return execute_channel_webhook(sh, st, m, q, body);
    }
    let rec = match rec_by_token(sh, st, m) {
        Ok(r) => r.clone(),
        Err(reply) => return reply,
    };
    let Some((initial, _)) = rec.initial.clone() else {
        // Discord answers 10015 until it has registered the initial response. When that response
        // travels as the body of the HTTP interaction, a bot's first follow-up can legitimately
        // race it on another connection, so this is an error the bot must retry, not a violation
        // (a bot that never acknowledges fails on its missing initial response instead).
        return Reply::error(404, 10015, "Unknown Webhook");
    };
    let message_id = if m.op.template.ends_with("@original") {
        match rec.original_id {
            Some(id) => id,
            None => {
                return Reply::violation(
                    404,
                    10008,
                    "Unknown Message",
                    format!("@original does not exist after response type {initial}"),
                );
            }
        }
    } else {
        m.id("message_id")
    };
    match m.op.id.as_str() {
        "execute_webhook" => {
            if matches!(initial, 1 | 8 | 9) {
                return Reply::violation(
                    404,
                    10015,
                    "Unknown Webhook",
                    format!("follow-up after response type {initial}"),
                );
            }
            let msg = handlers::post_message(sh, st, rec.channel_id, sh.bot_id(), body, Some(sh.app_id));
            if let Some(r) = st.interactions.get_mut(&rec.id) {
                r.followups.push(body.clone());
            }
            Reply::ok(msg)
        }
        "get_original_webhook_message" | "get_webhook_message" => match st.message(rec.channel_id, message_id) {
            Some(v) => Reply::ok(v.clone()),
            None => Reply::error(404, 10008, "Unknown Message"),
        },
        "update_original_webhook_message" | "update_webhook_message" => {
            let reply = handlers::edit_message(sh, st, rec.channel_id, message_id, body);
            if reply.status == 200 {
                if let Some(flags) = st.message(rec.channel_id, message_id).and_then(|v| v["flags"].as_u64())
                    && let Some(msg) = st.message_mut(rec.channel_id, message_id)
                {
                    // The loading flag goes away once the deferred message is edited.
                    msg["flags"] = json!(flags & !128);
                }
                if m.op.id == "update_original_webhook_message"
                    && let Some(r) = st.interactions.get_mut(&rec.id)
                {
                    let mut merged = r.edit.clone().unwrap_or_else(|| json!({}));
                    if let (Some(dst), Some(src)) = (merged.as_object_mut(), body.as_object()) {
                        for (k, v) in src {
                            dst.insert(k.clone(), v.clone());
                        }
                    }
                    r.edit = Some(merged);
                }
            }
            reply
        }
        "delete_original_webhook_message" | "delete_webhook_message" => {
            if handlers::delete_message(sh, st, rec.channel_id, message_id) {
                Reply::empty()
            } else {
                Reply::error(404, 10008, "Unknown Message")
            }
        }
        _ => Reply::error(404, 0, "404: Not Found"),
    }
}

/// The outcome once it is complete (deferred responses need their `@original` edit).
pub fn outcome(rec: &InteractionRec) -> Option<Result<InteractionOutcome, Error>> {
    if let Some(e) = &rec.delivery_error {
        return Some(Err(Error::Endpoint(e.clone())));
    }
    let (kind, data) = rec.initial.clone()?;
    // A deferred answer is there once `@original` was edited, or a follow-up was sent instead
    // (e.g. a public "thinking…" replaced by an ephemeral error).
    if matches!(kind, 5 | 6) && rec.edit.is_none() && rec.followups.is_empty() {
        return None;
    }
    let mut data = if data.is_object() { data } else { json!({}) };
    if let (Some(dst), Some(Value::Object(src))) = (data.as_object_mut(), rec.edit.as_ref()) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    Some(Ok(InteractionOutcome { kind, data, followups: rec.followups.clone() }))
}
