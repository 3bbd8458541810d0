//! The gateway websocket: Hello, Identify, Ready, GUILD_CREATE, heartbeats, Resume, and
//! injected reconnects, invalid sessions and close codes.

use crate::compress::Encoder;
use crate::json;
use crate::server::Shared;
use crate::state::{Outbound, Session, State};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State as AxState};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

/// Intent bits Discord defines.
const VALID_INTENTS: u64 = 0x1_ffff | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
/// Privileged intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
const PRIVILEGED: u64 = (1 << 1) | (1 << 8) | (1 << 15);
/// Identify buckets refill after this.
const IDENTIFY_WINDOW: Duration = Duration::from_secs(5);

/// `GET /` with a websocket upgrade.
pub async fn upgrade(
    AxState(sh): AxState<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let encoder = Encoder::from_query(q.get("compress").map(String::as_str));
    if q.get("encoding").is_some_and(|e| e != "json") {
        sh.lock().violation(None, "GATEWAY", "/", "only encoding=json is supported by the fake".into());
    }
    ws.max_message_size(64 << 20).on_upgrade(move |socket| connection(sh, socket, encoder))
}

fn frame(op: u8, d: Value) -> String {
    json!({"op": op, "d": d, "s": null, "t": null}).to_string()
}

enum Step {
    Continue,
    Close(u16, &'static str),
}

/// A flood in progress on one connection.
struct Flooding {
    templates: Arc<Vec<(String, String)>>,
    seq: u64,
    left: u64,
}

/// Frames written per turn of the connection loop, so heartbeats are still answered mid-flood.
const FLOOD_BATCH: u64 = 64;

struct Conn {
    id: u64,
    tx: UnboundedSender<Outbound>,
    session: Option<String>,
}

async fn connection(sh: Arc<Shared>, mut socket: WebSocket, mut encoder: Encoder) {
    let (tx, mut rx) = unbounded_channel::<Outbound>();
    let mut conn = Conn { id: sh.conn_ids.fetch_add(1, Ordering::Relaxed), tx, session: None };
    let hello = frame(10, json!({"heartbeat_interval": sh.opts.heartbeat_interval.as_millis() as u64}));
    if send(&mut socket, &mut encoder, &hello).await.is_err() {
        return;
    }
    let mut flooding: Option<Flooding> = None;
    loop {
        tokio::select! {
            () = sh.cancel.cancelled() => break,
            () = std::future::ready(()), if flooding.is_some() => {
                if let Some(f) = flooding.as_mut() {
                    if flood_batch(&sh, &mut socket, &mut encoder, f).await.is_err() {
                        break;
                    }
                    if f.left == 0 {
                        flooding = None;
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outbound::Frame(text)) => {
                    if send(&mut socket, &mut encoder, &text).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Flood { templates, first_seq, count }) => {
                    if !templates.is_empty() {
                        flooding = Some(Flooding { templates, seq: first_seq, left: count });
                    }
                }
                Some(Outbound::Close(Some((code, reason)))) => {
                    close(&mut socket, code, &reason).await;
                    break;
                }
                // Abrupt drop: no close frame, the TCP connection just goes away.
                Some(Outbound::Close(None)) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Step::Close(code, reason) = handle_op(&sh, &mut conn, text.as_str()) {
                        // Flush what the op queued (e.g. op 9) before closing.
                        while let Ok(Outbound::Frame(f)) = rx.try_recv() {
                            let _ = send(&mut socket, &mut encoder, &f).await;
                        }
                        close(&mut socket, code, reason).await;
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    close(&mut socket, 4002, "Error while decoding payload.").await;
                    break;
                }
                // A client's close frame is answered with one, as RFC 6455 (and Discord) do;
                // clients wait for it before ending the session.
                // Closing with 1000 or 1001 ends the session as on Discord: it cannot be
                // resumed (a client that means to resume closes with another code, e.g. 4000).
                Some(Ok(Message::Close(frame))) => {
                    if frame.as_ref().is_some_and(|f| f.code == 1000 || f.code == 1001) {
                        end_session(&sh, &conn);
                    }
                    let _ = socket.send(Message::Close(frame)).await;
                    break;
                }
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    detach(&sh, &conn);
}

async fn send(socket: &mut WebSocket, encoder: &mut Encoder, text: &str) -> Result<(), ()> {
    let msg = match encoder.encode(text) {
        Ok(Some(bytes)) => Message::Binary(bytes.into()),
        Ok(None) => Message::Text(text.to_owned().into()),
        Err(_) => return Err(()),
    };
    socket.send(msg).await.map_err(|_| ())
}

/// Writes up to [`FLOOD_BATCH`] flood frames, then flushes.
async fn flood_batch(sh: &Shared, socket: &mut WebSocket, encoder: &mut Encoder, f: &mut Flooding) -> Result<(), ()> {
    use futures_util::SinkExt;
    let n = f.left.min(FLOOD_BATCH);
    for _ in 0..n {
        let (head, tail) = &f.templates[(f.seq % f.templates.len() as u64) as usize];
        let id = sh.ids.next();
        let text = format!("{{\"op\":0,\"s\":{},\"t\":\"MESSAGE_CREATE\",\"d\":{head}{id}{tail}}}", f.seq);
        let msg = match encoder.encode(&text) {
            Ok(Some(bytes)) => Message::Binary(bytes.into()),
            Ok(None) => Message::Text(text.into()),
            Err(_) => return Err(()),
        };
        socket.feed(msg).await.map_err(|_| ())?;
        f.seq += 1;
        f.left -= 1;
    }
    socket.flush().await.map_err(|_| ())?;
    sh.flood_sent.fetch_add(n, Ordering::Relaxed);
    Ok(())
}

/// Marker the message id is spliced in at.
const ID_MARK: &str = "FLOOD_ID_MARK";

/// Starts a flood of `count` MESSAGE_CREATEs on every connected session: one message template per
/// guild (its first text channel, its first member that is not the bot) for up to 64 guilds, each
/// flood message a fresh snowflake id. Sequence numbers are reserved in the session so events
/// dispatched after the flood continue after it; flood messages are neither stored nor buffered for
/// resume, and their content is sent whatever the session's intents. Returns the number of sessions
/// flooded.
pub fn start_flood(sh: &Shared, count: u64) -> usize {
    let mut st = sh.lock();
    let bot = sh.bot_id();
    let mut templates = Vec::new();
    for g in st.guilds.values().take(64) {
        let channel = g.channels.iter().copied().find(|c| st.channels.get(c).is_some_and(|c| c.kind == 0));
        let member = g.members.keys().copied().find(|m| *m != bot);
        let (Some(channel), Some(member)) = (channel, member) else { continue };
        let body = json!({"content": "flood: how do I reset my password?"});
        let mut msg = json::message(&st, sh.ids.next(), channel, member, &body, None);
        msg["id"] = json!(ID_MARK);
        if let Some((head, tail)) = msg.to_string().split_once(&format!("\"{ID_MARK}\"")) {
            templates.push((format!("{head}\""), format!("\"{tail}")));
        }
    }
    let templates = Arc::new(templates);
    let mut flooded = 0;
    for s in st.sessions.values_mut() {
        if let Some((_, tx)) = &s.conn {
            let first_seq = s.seq + 1;
            s.seq += count;
            if tx.send(Outbound::Flood { templates: templates.clone(), first_seq, count }).is_ok() {
                flooded += 1;
            }
        }
    }
    flooded
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_owned().into() }))).await;
}

/// The client ended its session (close code 1000 or 1001).
fn end_session(sh: &Shared, conn: &Conn) {
    let mut st = sh.lock();
    if let Some(s) = conn.session.as_ref().and_then(|id| st.sessions.get_mut(id)) {
        s.resumable = false;
    }
}

fn detach(sh: &Shared, conn: &Conn) {
    let mut st = sh.lock();
    if let Some(s) = conn.session.as_ref().and_then(|id| st.sessions.get_mut(id))
        && s.conn.as_ref().is_some_and(|(id, _)| *id == conn.id)
    {
        s.conn = None;
    }
    drop(st);
    sh.notify();
}

fn token_ok(sh: &Shared, d: &Value) -> bool {
    let token = d["token"].as_str().unwrap_or_default();
    token.strip_prefix("Bot ").unwrap_or(token) == sh.token
}

fn handle_op(sh: &Shared, conn: &mut Conn, text: &str) -> Step {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        return Step::Close(4002, "Error while decoding payload.");
    };
    let op = payload["op"].as_u64().unwrap_or(u64::MAX);
    let d = &payload["d"];
    match op {
        1 => {
            let _ = conn.tx.send(Outbound::Frame(frame(11, Value::Null)));
            Step::Continue
        }
        2 => identify(sh, conn, d),
        6 => resume(sh, conn, d),
        3 | 4 | 8 if conn.session.is_none() => Step::Close(4003, "Not authenticated."),
        3 | 4 => Step::Continue,
        8 => {
            request_members(sh, conn, d);
            Step::Continue
        }
        _ => Step::Close(4001, "Unknown opcode."),
    }
}

fn identify(sh: &Shared, conn: &mut Conn, d: &Value) -> Step {
    if conn.session.is_some() {
        return Step::Close(4005, "Already authenticated.");
    }
    if !token_ok(sh, d) {
        sh.lock().violation(None, "GATEWAY", "identify", "invalid token in Identify".into());
        return Step::Close(4004, "Authentication failed.");
    }
    let Some(intents) = d["intents"].as_u64() else {
        return Step::Close(4013, "Invalid intent(s).");
    };
    if intents & !VALID_INTENTS != 0 {
        return Step::Close(4013, "Invalid intent(s).");
    }
    if intents & PRIVILEGED & sh.opts.denied_intents != 0 {
        return Step::Close(4014, "Disallowed intent(s).");
    }
    let shard = match d.get("shard") {
        None | Some(Value::Null) => (0, 1),
        Some(s) => match (s[0].as_u64(), s[1].as_u64()) {
            (Some(id), Some(total)) if total > 0 && id < total => (id as u32, total as u32),
            _ => return Step::Close(4010, "Invalid shard."),
        },
    };
    let mut st = sh.lock();
    let key = shard.0 % sh.opts.max_concurrency.max(1);
    let now = Instant::now();
    if st.identify_buckets.get(&key).is_some_and(|last| now.duration_since(*last) < IDENTIFY_WINDOW) {
        st.violation(
            None,
            "GATEWAY",
            "identify",
            format!(
                "identify for shard {shard:?} within 5 s of another in rate-limit bucket {key} (max_concurrency {})",
                sh.opts.max_concurrency
            ),
        );
        let _ = conn.tx.send(Outbound::Frame(frame(9, json!(false))));
        return Step::Continue;
    }
    st.identify_buckets.insert(key, now);
    st.identify_count += 1;
    // A new identify for a shard replaces that shard's disconnected sessions.
    st.sessions.retain(|_, s| s.shard != shard || (s.conn.is_some() && s.resumable));
    let session_id = hex::encode((0..16).map(|_| fastrand::u8(..)).collect::<Vec<_>>());
    let mut session = Session {
        shard,
        intents,
        seq: 0,
        buffer: VecDeque::new(),
        conn: Some((conn.id, conn.tx.clone())),
        resumable: true,
    };
    let ready = ready(sh, &st, &session_id, shard);
    session.push("READY", ready);
    for g in st.guilds.values() {
        if ((g.id >> 22) % u64::from(shard.1)) as u32 == shard.0 {
            session.push("GUILD_CREATE", json::guild(&st, g, true));
        }
    }
    st.sessions.insert(session_id.clone(), session);
    conn.session = Some(session_id);
    drop(st);
    sh.notify();
    Step::Continue
}

fn ready(sh: &Shared, st: &State, session_id: &str, shard: (u32, u32)) -> Value {
    let guilds: Vec<Value> = st
        .guilds
        .keys()
        .filter(|g| ((*g >> 22) % u64::from(shard.1)) as u32 == shard.0)
        .map(|g| json!({"id": g.to_string(), "unavailable": true}))
        .collect();
    let mut user = json::user_by_id(st, sh.bot_id());
    user["verified"] = json!(true);
    user["mfa_enabled"] = json!(false);
    json!({
        "v": 10,
        "user": user,
        "guilds": guilds,
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": format!("ws://{}", sh.addr),
        "shard": [shard.0, shard.1],
        "application": {"id": sh.app_id.to_string(), "flags": (1 << 19) | (1 << 15) | (1 << 13)},
        "private_channels": [],
        "presences": [],
        "relationships": [],
        "guild_join_requests": [],
        "user_settings": {},
        "geo_ordered_rtc_regions": ["us-east"],
        "_trace": ["[\"fake-discord\"]"],
    })
}

fn resume(sh: &Shared, conn: &mut Conn, d: &Value) -> Step {
    if !token_ok(sh, d) {
        return Step::Close(4004, "Authentication failed.");
    }
    let session_id = d["session_id"].as_str().unwrap_or_default().to_owned();
    let seq = d["seq"].as_u64().unwrap_or(0);
    let mut st = sh.lock();
    let ok = st
        .sessions
        .get(&session_id)
        .is_some_and(|s| s.resumable && s.buffer.front().is_none_or(|(first, _)| *first <= seq + 1));
    if !ok {
        drop(st);
        let _ = conn.tx.send(Outbound::Frame(frame(9, json!(false))));
        return Step::Continue;
    }
    st.resume_count += 1;
    if let Some(s) = st.sessions.get_mut(&session_id) {
        if let Some((_, old)) = s.conn.take() {
            let _ = old.send(Outbound::Close(Some((4000, "Session resumed elsewhere.".into()))));
        }
        for (n, f) in &s.buffer {
            if *n > seq {
                let _ = conn.tx.send(Outbound::Frame(f.clone()));
            }
        }
        s.conn = Some((conn.id, conn.tx.clone()));
        s.push("RESUMED", json!({"_trace": ["[\"fake-discord\"]"]}));
    }
    conn.session = Some(session_id);
    drop(st);
    sh.notify();
    Step::Continue
}

fn request_members(sh: &Shared, conn: &Conn, d: &Value) {
    let Some(gid) = d["guild_id"].as_str().and_then(|g| g.parse::<u64>().ok()) else {
        return;
    };
    let mut st = sh.lock();
    let Some(g) = st.guilds.get(&gid) else { return };
    let wanted: Option<Vec<u64>> = d["user_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().and_then(|s| s.parse().ok())).collect());
    let prefix = d["query"].as_str().unwrap_or_default().to_lowercase();
    let members: Vec<Value> = g
        .members
        .values()
        .filter(|m| wanted.as_ref().is_none_or(|w| w.contains(&m.user_id)))
        .filter(|m| st.users.get(&m.user_id).is_none_or(|u| u.username.to_lowercase().starts_with(&prefix)))
        .map(|m| json::member(&st, m))
        .collect();
    let mut chunk = json!({"guild_id": gid.to_string(), "members": members, "chunk_index": 0, "chunk_count": 1});
    if let Some(nonce) = d.get("nonce") {
        chunk["nonce"] = nonce.clone();
    }
    if let Some(s) = conn.session.as_ref().and_then(|id| st.sessions.get_mut(id)) {
        s.push("GUILD_MEMBERS_CHUNK", chunk);
    }
}

/// Close (or drop) every live connection.
pub fn disconnect_all(sh: &Shared, close_code: Option<u16>) {
    let st = sh.lock();
    for s in st.sessions.values() {
        if let Some((_, tx)) = &s.conn {
            let _ = tx.send(Outbound::Close(close_code.map(|c| (c, "Injected by fake-discord.".to_owned()))));
        }
    }
}

/// Send op 7 Reconnect to every live connection.
pub fn send_reconnect(sh: &Shared) {
    let st = sh.lock();
    for s in st.sessions.values() {
        if let Some((_, tx)) = &s.conn {
            let _ = tx.send(Outbound::Frame(frame(7, Value::Null)));
        }
    }
}

/// Send op 9 Invalid Session to every live connection.
pub fn invalidate_sessions(sh: &Shared, resumable: bool) {
    let mut st = sh.lock();
    for s in st.sessions.values_mut() {
        if let Some((_, tx)) = &s.conn {
            let _ = tx.send(Outbound::Frame(frame(9, json!(resumable))));
        }
        if !resumable {
            s.resumable = false;
        }
    }
}
