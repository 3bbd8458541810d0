//! One target per reader of untrusted bytes. Each calls the owning crate's own function — the
//! one its endpoint, client or loader runs — and checks that reader's invariants with
//! `assert!` (a broken invariant is a failure like a panic).
//!
//! Inputs that need a choice besides their bytes (which provider dialect, which file name,
//! which HTTP status) name it on their first line (`openai`, `notes.md`, `404`); without a
//! recognised first line the choice comes from the input's digest. Chunk boundaries of a
//! streamed body come from the digest too, so every input replays exactly.

use arbitrary::Unstructured;
use serde_json::{Value, json};

use crate::{Outcome, Runner, Target, digest};

/// Every target, in the order the command runs them.
pub fn all() -> Vec<Target> {
    vec![INTERACTION, GATEWAY, FAQ_CSV, NOTION, SHEETS, LLM_JSON, LLM_SSE, KB_UPLOAD, AGENT, DASHBOARD_FORM, KB_INDEX]
}

fn no_seeds() -> Vec<Vec<u8>> {
    Vec::new()
}

fn refused(e: impl std::fmt::Display) -> Outcome {
    Err(e.to_string())
}

/// The first line as a choice among `known`, and the rest; the whole input when the first line
/// is none of them (then `fallback` picks by digest).
fn knob<'a>(input: &'a [u8], known: &[&'static str]) -> (&'static str, &'a [u8]) {
    if let Some(nl) = input.iter().position(|b| *b == b'\n')
        && let Some(k) = known.iter().find(|k| k.as_bytes() == &input[..nl])
    {
        return (k, &input[nl + 1..]);
    }
    (known[(digest(input) % known.len() as u64) as usize], input)
}

fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let pieces = [
        "",
        " ",
        "é",
        "😀",
        "\u{202e}",
        "\n",
        "\r\n",
        "\"",
        ",",
        "<b>",
        "</p>",
        "&amp;",
        "# ",
        "```",
        "@everyone",
        "\\",
    ];
    let mut s: String = u.arbitrary()?;
    for _ in 0..u.int_in_range(0..=4)? {
        s.push_str(u.choose(&pieces)?);
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// interaction: POST /interactions — signature headers, Ed25519, then JSON and twilight's model.

/// The endpoint's reader, [`beacon_web::interaction::read_interaction`].
pub const INTERACTION: Target = Target {
    name: "interaction",
    about: "POST /interactions headers and body: beacon_web::interaction::read_interaction",
    max_len: beacon_web::BODY_LIMIT,
    dictionary: &[
        b"\"type\":",
        b"\"data\":",
        b"\"options\":",
        b"\"guild_id\":",
        b"\"member\":",
        b"\"resolved\":",
        b"\"id\":\"",
    ],
    json: true,
    builtin_seeds: no_seeds,
    generate: gen_interaction,
    make: make_interaction,
};

fn gen_interaction(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let kind = u.int_in_range(1..=5u8)?;
    let options: Vec<Value> = (0..u.int_in_range(0..=3)?)
        .map(|_| Ok(json!({"name": text(u)?, "type": u.int_in_range(1..=11u8)?, "value": text(u)?})))
        .collect::<arbitrary::Result<_>>()?;
    let v = json!({
        "id": u.arbitrary::<u64>()?.to_string(),
        "application_id": "1",
        "type": kind,
        "token": text(u)?,
        "version": 1,
        "guild_id": u.arbitrary::<u64>()?.to_string(),
        "channel_id": "3",
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "member": {"user": {"id": "4", "username": text(u)?, "discriminator": "0", "avatar": null},
                   "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false,
                   "permissions": u.arbitrary::<u64>()?.to_string(), "flags": 0},
        "data": {"id": "5", "name": text(u)?, "type": u.int_in_range(1..=3u8)?, "options": options,
                 "custom_id": text(u)?, "component_type": u.int_in_range(1..=8u8)?},
    });
    serde_json::to_vec(&v).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_interaction() -> Result<Runner, String> {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use beacon_web::interaction::{Incoming, read_interaction};
    use ed25519_dalek::{Signer, SigningKey};
    const NOW: u64 = 1_750_000_000;
    let key = SigningKey::from_bytes(&[42; 32]);
    let verifier = beacon_discord::InteractionVerifier::from_hex(&hex::encode(key.verifying_key().to_bytes()))
        .map_err(|e| e.to_string())?;
    Ok(Box::new(move |body: &[u8]| {
        let h = digest(body);
        let mut headers = HeaderMap::new();
        // Mostly a valid signature (the JSON reader is reached); else a stale, forged or missing one.
        let mode = h % 8;
        let ts = if mode == 5 { NOW - 301 } else { NOW };
        let mut message = ts.to_string().into_bytes();
        message.extend_from_slice(body);
        let mut signature = hex::encode(key.sign(&message).to_bytes());
        if mode == 6 {
            signature = hex::encode(&body[..body.len().min(64)]);
        }
        if mode != 7 {
            headers.insert("x-signature-timestamp", HeaderValue::from(ts));
            if let Ok(v) = HeaderValue::from_str(&signature) {
                headers.insert("x-signature-ed25519", v);
            }
        }
        match read_interaction(&verifier, &headers, body, NOW) {
            Ok(Incoming::Ping) => {
                assert!(mode < 5, "a ping passed without a valid signature");
                Ok(())
            }
            Ok(Incoming::Interaction(_)) => {
                assert!(mode < 5, "an interaction passed without a valid signature");
                Ok(())
            }
            Err(r) => {
                if mode < 5 {
                    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a signed body was refused as unsigned: {r:?}");
                } else {
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
                }
                Err(r.message.to_owned())
            }
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// gateway: a text frame as the shard hands it to twilight's parser.

/// twilight-gateway's `parse`, which every shard runs on every (decompressed) frame.
pub const GATEWAY: Target = Target {
    name: "gateway",
    about: "gateway frames (JSON): twilight_gateway::parse with every event type wanted, and the shards' peek (beacon_discord::unwanted_dispatch) agreeing with it",
    max_len: 256 * 1024,
    dictionary: &[
        b"\"op\":",
        b"\"t\":",
        b"\"s\":",
        b"\"d\":",
        b"\"MESSAGE_CREATE\"",
        b"\"GUILD_CREATE\"",
        b"\"INTERACTION_CREATE\"",
    ],
    json: true,
    builtin_seeds: no_seeds,
    generate: gen_gateway,
    make: make_gateway,
};

fn gen_gateway(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let t =
        *u.choose(&["READY", "MESSAGE_CREATE", "GUILD_CREATE", "GUILD_DELETE", "INTERACTION_CREATE", "RESUMED", "X"])?;
    let op = *u.choose(&[0u8, 1, 7, 9, 10, 11, 42])?;
    let v = json!({"op": op, "t": t, "s": u.arbitrary::<u32>()?,
                   "d": {"id": u.arbitrary::<u64>()?.to_string(), "content": text(u)?, "heartbeat_interval": u.arbitrary::<u32>()?,
                         "channel_id": "1", "guild_id": "2", "author": {"id": "3", "username": text(u)?}}});
    serde_json::to_vec(&v).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_gateway() -> Result<Runner, String> {
    Ok(Box::new(|frame: &[u8]| {
        let text = String::from_utf8_lossy(frame).into_owned();
        // With nothing wanted, the peek names every dispatch twilight would deserialize.
        let peeked = beacon_discord::unwanted_dispatch(&text, twilight_gateway::EventTypeFlags::empty());
        match twilight_gateway::parse(text, twilight_gateway::EventTypeFlags::all()) {
            Ok(Some(event)) => {
                let event = twilight_gateway::Event::from(event);
                if event.kind().name().is_some() {
                    assert_eq!(peeked, Some(event.kind()), "the peek disagrees with the parser");
                }
                Ok(())
            }
            Ok(None) => Err("ignored".into()),
            Err(e) => refused(e),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// faq_csv: a CSV import (`/faq import`, the API's import).

/// The FAQ's import reader, [`beacon_faq::parse_csv`].
pub const FAQ_CSV: Target = Target {
    name: "faq_csv",
    about: "FAQ CSV import: beacon_faq::parse_csv",
    max_len: 256 * 1024,
    dictionary: &[
        b"question,answer",
        b"id,question,answer,tags,pinned",
        b"\"",
        b"\"\"",
        b",",
        b"\n",
        b"\r",
        b"'=",
        b"#1",
        b"yes",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_csv,
    make: make_csv,
};

fn gen_csv(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = *u.choose(&[
        &["question", "answer"][..],
        &["id", "question", "answer", "tags", "pinned"],
        &["Question", "Answer", "Tags", "views"],
        &["answer"],
    ])?;
    out.write_record(header).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    for _ in 0..u.int_in_range(0..=40)? {
        let n = u.int_in_range(0..=header.len() + 1)?;
        let row: Vec<String> = (0..n).map(|_| text(u)).collect::<arbitrary::Result<_>>()?;
        out.write_record(&row).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    }
    out.into_inner().map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_csv() -> Result<Runner, String> {
    Ok(Box::new(|bytes: &[u8]| match beacon_faq::parse_csv(bytes) {
        Ok(rows) => {
            assert!(rows.len() <= beacon_faq::csvio::MAX_IMPORT_ROWS);
            for r in &rows {
                assert!(!r.entry.question.trim().is_empty() && !r.entry.answer.trim().is_empty());
                assert!(r.entry.question.chars().count() <= beacon_faq::MAX_QUESTION_CHARS);
                assert!(r.entry.answer.chars().count() <= beacon_faq::MAX_ANSWER_CHARS);
            }
            Ok(())
        }
        Err(beacon_faq::FaqError::Csv { line, message }) => {
            // A person fixes the file from this message: it must name a line.
            assert!(line >= 1, "a refused CSV names no line: {message}");
            Err(message)
        }
        Err(e) => panic!("a CSV import failed with something other than a line's message: {e}"),
    }))
}

// ---------------------------------------------------------------------------------------------
// notion: a page object and its blocks, as the Notion API answers them.

/// The Notion source's page and block rendering, [`beacon_kb::notion::document_of`].
pub const NOTION: Target = Target {
    name: "notion",
    about: "Notion page and block JSON: beacon_kb::notion::document_of",
    max_len: 256 * 1024,
    dictionary: &[
        b"\"rich_text\":",
        b"\"plain_text\":",
        b"\"has_children\":true",
        b"\"type\":\"numbered_list_item\"",
        b"\"children\":",
    ],
    json: true,
    builtin_seeds: no_seeds,
    generate: gen_notion,
    make: make_notion,
};

fn gen_notion(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let kinds = [
        "paragraph",
        "heading_1",
        "heading_3",
        "bulleted_list_item",
        "numbered_list_item",
        "to_do",
        "code",
        "quote",
        "toggle",
        "child_page",
        "divider",
        "table",
    ];
    let mut blocks = Vec::new();
    for _ in 0..u.int_in_range(0..=12)? {
        let kind = *u.choose(&kinds)?;
        let rich = json!([{"type": "text", "plain_text": text(u)?}]);
        blocks.push(json!({"object": "block", "id": u.arbitrary::<u16>()?.to_string(), "type": kind,
                           "has_children": u.arbitrary::<bool>()?, kind: {"rich_text": rich, "language": text(u)?, "checked": u.arbitrary::<bool>()?},
                           "children": []}));
    }
    let v = json!({"page": {"object": "page", "id": "p1", "archived": u.ratio(1u8, 10)?,
                            "properties": {"Name": {"type": "title", "title": [{"plain_text": text(u)?}]}}, "url": text(u)?},
                   "blocks": blocks});
    serde_json::to_vec(&v).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_notion() -> Result<Runner, String> {
    Ok(Box::new(|bytes: &[u8]| {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let blocks = v["blocks"].as_array().map(Vec::as_slice).unwrap_or_default();
        match beacon_kb::notion::document_of(&v["page"], blocks) {
            Some(doc) => {
                assert!(doc.key.starts_with("notion:") && doc.text.starts_with("# "));
                Ok(())
            }
            None => Err("not a live page".into()),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// sheets: a `values.get` answer of the Sheets API.

/// The Sheets source's readers, [`beacon_kb::sheets::values_rows`] then `rows_to_documents`.
pub const SHEETS: Target = Target {
    name: "sheets",
    about: "Google Sheets values JSON: beacon_kb::sheets::values_rows + rows_to_documents",
    max_len: 256 * 1024,
    dictionary: &[b"\"values\":", b"\"range\":", b"\"majorDimension\":\"ROWS\"", b"[\"\"]"],
    json: true,
    builtin_seeds: no_seeds,
    generate: gen_sheets,
    make: make_sheets,
};

fn gen_sheets(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut rows = Vec::new();
    for _ in 0..u.int_in_range(0..=20)? {
        let cells: Vec<Value> = (0..u.int_in_range(0..=6)?)
            .map(|_| Ok(if u.ratio(1u8, 5)? { json!(u.arbitrary::<i32>()?) } else { json!(text(u)?) }))
            .collect::<arbitrary::Result<_>>()?;
        rows.push(Value::Array(cells));
    }
    serde_json::to_vec(&json!({"range": "Sheet1!A1:Z", "majorDimension": "ROWS", "values": rows}))
        .map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_sheets() -> Result<Runner, String> {
    let mut config = beacon_kb::SheetsConfig::new("sheet", "A:Z");
    config.title_column = Some("Question".into());
    Ok(Box::new(move |bytes: &[u8]| {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let rows = beacon_kb::sheets::values_rows(&v);
        let docs = beacon_kb::sheets::rows_to_documents(&config, &rows);
        assert!(docs.len() < rows.len().max(1));
        if docs.is_empty() { Err("no rows".into()) } else { Ok(()) }
    }))
}

// ---------------------------------------------------------------------------------------------
// llm_json and llm_sse: the providers' replies, whole and streamed.

const DIALECTS: &[&str] = &["openai", "anthropic", "anthropic-structured", "gemini"];

fn dialect(name: &str) -> beacon_llm::providers::replay::Dialect {
    use beacon_llm::providers::replay::Dialect;
    match name {
        "anthropic" => Dialect::Anthropic { structured: false },
        "anthropic-structured" => Dialect::Anthropic { structured: true },
        "gemini" => Dialect::Gemini,
        _ => Dialect::OpenAi,
    }
}

type Readers = Vec<(&'static str, beacon_llm::providers::replay::ReplyReader)>;

fn readers() -> Result<Readers, String> {
    DIALECTS
        .iter()
        .map(|d| {
            beacon_llm::providers::replay::ReplyReader::new(dialect(d)).map(|r| (*d, r)).map_err(|e| e.to_string())
        })
        .collect()
}

fn reader<'a>(readers: &'a Readers, name: &str) -> &'a beacon_llm::providers::replay::ReplyReader {
    readers.iter().find(|(d, _)| *d == name).map_or(&readers[0].1, |(_, r)| r)
}

/// A provider's whole reply: `ReplyReader::read_body` (the clients' JSON decoding and parsers).
pub const LLM_JSON: Target = Target {
    name: "llm_json",
    about: "LLM reply bodies (OpenAI, Anthropic, Gemini): beacon_llm::providers::replay::ReplyReader::read_body",
    max_len: 256 * 1024,
    dictionary: &[
        b"\"choices\":",
        b"\"content\":",
        b"\"tool_calls\":",
        b"\"candidates\":",
        b"\"parts\":",
        b"\"usage\":",
        b"\"arguments\":\"{",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_llm_json,
    make: make_llm_json,
};

fn gen_llm_json(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let d = *u.choose(DIALECTS)?;
    let body = match d {
        "openai" => {
            json!({"choices": [{"message": {"content": text(u)?, "tool_calls": [{"id": "c", "function": {"name": text(u)?, "arguments": text(u)?}}]}, "finish_reason": text(u)?}], "usage": {"prompt_tokens": u.arbitrary::<i64>()?}})
        }
        "gemini" => {
            json!({"candidates": [{"content": {"parts": [{"text": text(u)?}, {"functionCall": {"name": text(u)?, "args": {}}}]}, "finishReason": text(u)?}]})
        }
        _ => {
            json!({"content": [{"type": "text", "text": text(u)?}, {"type": "tool_use", "id": "t", "name": "structured_response", "input": {"a": text(u)?}}], "stop_reason": text(u)?, "usage": {"input_tokens": u.arbitrary::<u32>()?}})
        }
    };
    let mut out = format!("{d}\n").into_bytes();
    out.extend(serde_json::to_vec(&body).map_err(|_| arbitrary::Error::IncorrectFormat)?);
    Ok(out)
}

fn make_llm_json() -> Result<Runner, String> {
    let readers = readers()?;
    Ok(Box::new(move |input: &[u8]| {
        let (d, body) = knob(input, DIALECTS);
        reader(&readers, d).read_body(body).map(drop).map_err(|e| e.to_string())
    }))
}

/// A provider's streamed reply, cut into chunks: `ReplyReader::read_stream` (the SSE decoder
/// with its limits and each dialect's stream handler).
pub const LLM_SSE: Target = Target {
    name: "llm_sse",
    about: "LLM SSE streams (OpenAI, Anthropic, Gemini): beacon_llm::providers::replay::ReplyReader::read_stream",
    max_len: 2 * 1024 * 1024,
    dictionary: &[
        b"data: ",
        b"event: ",
        b"\n\n",
        b"\r\n",
        b"data: [DONE]\n\n",
        b": ping\n",
        b"event: message_stop\n",
        b"\"delta\":",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_llm_sse,
    make: make_llm_sse,
};

fn gen_llm_sse(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let d = *u.choose(DIALECTS)?;
    let mut out = format!("{d}\n");
    for _ in 0..u.int_in_range(0..=10)? {
        let data = match d {
            "openai" => {
                json!({"choices": [{"delta": {"content": text(u)?}, "finish_reason": if u.ratio(1u8, 4)? { json!("stop") } else { Value::Null }}]})
            }
            "gemini" => json!({"candidates": [{"content": {"parts": [{"text": text(u)?}]}}]}),
            _ => {
                json!({"type": *u.choose(&["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])?,
                        "index": u.int_in_range(0..=2u8)?, "delta": {"type": "text_delta", "text": text(u)?, "partial_json": text(u)?},
                        "content_block": {"type": *u.choose(&["text", "tool_use"])?, "id": "t", "name": text(u)?}, "message": {"usage": {"input_tokens": 1}}})
            }
        };
        out.push_str(&format!("data: {data}\n\n"));
    }
    if u.arbitrary()? {
        out.push_str("data: [DONE]\n\n");
    }
    Ok(out.into_bytes())
}

fn make_llm_sse() -> Result<Runner, String> {
    let readers = readers()?;
    Ok(Box::new(move |input: &[u8]| {
        let (d, body) = knob(input, DIALECTS);
        // Chunk boundaries anywhere (a provider's stream arrives in arbitrary pieces).
        let mut rng = fastrand::Rng::with_seed(digest(input));
        let mut chunks = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let most = if rng.bool() { 16 } else { 4096 };
            let n = rng.usize(1..=rest.len().min(most));
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
        match reader(&readers, d).read_stream(&chunks) {
            Ok(events) => {
                let dones = events.iter().filter(|e| matches!(e, beacon_llm::StreamEvent::Done(_))).count();
                assert_eq!(dones, 1, "a completed stream ends with exactly one Done");
                assert!(matches!(events.last(), Some(beacon_llm::StreamEvent::Done(_))), "Done is the last event");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// kb_upload: a file a guild admin uploads.

const FILE_NAMES: &[&str] =
    &["notes.md", "notes.markdown", "notes.txt", "page.html", "page.htm", "doc.pdf", "x.bin", "noext"];

/// The upload check and text extraction, [`beacon_kb::upload::extract`] (HTML through `html.rs`).
pub const KB_UPLOAD: Target = Target {
    name: "kb_upload",
    about: "uploaded knowledge files (.md, .txt, .html; .pdf refused): beacon_kb::upload::extract",
    max_len: 512 * 1024,
    dictionary: &[
        b"<title>",
        b"</title>",
        b"<script>",
        b"</script>",
        b"<!--",
        b"-->",
        b"<![CDATA[",
        b"&#x",
        b"&amp;",
        b"# ",
        b"%PDF-",
        b"<pre>",
        b"<li>",
        b"<",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_upload,
    make: make_upload,
};

fn gen_upload(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let name = *u.choose(FILE_NAMES)?;
    let tags = [
        "<p>",
        "</p>",
        "<h1>",
        "</h1>",
        "<title>",
        "</title>",
        "<script>",
        "</script>",
        "<!--",
        "-->",
        "&lt;",
        "&#128512;",
        "<br/>",
        "<a href='x'>",
        "</a>",
        "# ",
        "\n",
    ];
    let mut out = format!("{name}\n");
    for _ in 0..u.int_in_range(0..=30)? {
        if u.arbitrary()? {
            out.push_str(u.choose(&tags)?);
        } else {
            out.push_str(&text(u)?);
        }
    }
    Ok(out.into_bytes())
}

fn make_upload() -> Result<Runner, String> {
    Ok(Box::new(|input: &[u8]| {
        let (name, bytes) = knob(input, FILE_NAMES);
        match beacon_kb::upload::extract(name, bytes) {
            Ok(x) => {
                assert!(!x.text.trim().is_empty(), "an accepted file has text");
                assert!(matches!(x.format, "markdown" | "text" | "html"));
                assert!(!x.text.contains('\0'));
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// agent: the coding-agent service's answers.

const STATUSES: &[&str] = &["200", "201", "204", "400", "401", "403", "404", "409", "422", "500", "502", "418"];

/// The agent client's answer readers, [`beacon_agent::read_response`], `answer_of`, `read_list`.
pub const AGENT: Target = Target {
    name: "agent",
    about: "agent service answers: beacon_agent::read_response + answer_of + read_list (projects, sessions)",
    max_len: 256 * 1024,
    dictionary: &[
        b"\"detail\":",
        b"\"result\":",
        b"\"response\":",
        b"\"session\":",
        b"\"session_id\":",
        b"\"status\":\"active\"",
        b"inactive",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_agent,
    make: make_agent,
};

fn gen_agent(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let status = *u.choose(STATUSES)?;
    let body = match u.int_in_range(0..=3u8)? {
        0 => json!({"result": {"response": text(u)?}}),
        1 => {
            json!([{"id": text(u)?, "name": text(u)?, "status": *u.choose(&["active", "inactive", ""])?, "repo_url": null}])
        }
        2 => json!([{"session_id": text(u)?, "name": text(u)?, "message_count": u.arbitrary::<i64>()?}]),
        _ => json!({"detail": text(u)?}),
    };
    Ok(format!("{status}\n{body}").into_bytes())
}

fn make_agent() -> Result<Runner, String> {
    Ok(Box::new(|input: &[u8]| {
        let (status, body) = knob(input, STATUSES);
        let status: u16 = status.parse().map_err(|_| "status".to_owned())?;
        let text = String::from_utf8_lossy(body);
        match beacon_agent::read_response(status, &text) {
            Ok(v) => {
                let answer = beacon_agent::answer_of(&v);
                let projects = beacon_agent::read_list::<Vec<beacon_agent::Project>>(v.clone(), "projects");
                let sessions = beacon_agent::read_list::<Vec<beacon_agent::Session>>(v, "sessions");
                match (answer, projects, sessions) {
                    (Err(a), Err(_), Err(_)) => Err(a.to_string()),
                    _ => Ok(()),
                }
            }
            Err(e) => {
                // What a member is shown is bounded, whatever the service sent.
                assert!(e.to_string().chars().count() <= 400, "an agent error message is not bounded");
                Err(e.to_string())
            }
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// dashboard_form: a posted settings form (urlencoded), as axum's `Form` decodes it.

/// The settings page's form reader, [`beacon_web::pages::settings_form`], after the
/// urlencoded decoding axum's `Form` extractor does (serde_urlencoded).
pub const DASHBOARD_FORM: Target = Target {
    name: "dashboard_form",
    about: "dashboard settings form posts: serde_urlencoded (axum's Form) + beacon_web::pages::settings_form",
    max_len: 64 * 1024,
    dictionary: &[
        b"_keys=",
        b"&",
        b"=",
        b"%2C",
        b"+",
        b"%",
        b"support.channels=",
        b"tickets.sla_first_response=",
        b"core.staff_roles=",
    ],
    json: false,
    builtin_seeds: no_seeds,
    generate: gen_form,
    make: make_form,
};

const FORM_KEYS: &[&str] = &[
    "core.language",
    "core.staff_roles",
    "support.enabled",
    "support.history_turns",
    "tickets.sla_first_response",
    "support.channels",
    "faq.words",
    "core.log_channel",
];

fn gen_form(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let mut pairs: Vec<(String, String)> = vec![("_keys".into(), FORM_KEYS.join(",")), ("_csrf".into(), text(u)?)];
    for _ in 0..u.int_in_range(0..=12)? {
        pairs.push(((*u.choose(FORM_KEYS)?).to_owned(), text(u)?));
    }
    serde_urlencoded::to_string(&pairs).map(String::into_bytes).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_form() -> Result<Runner, String> {
    let settings = json!({"settings": [
        {"key": "core.language", "schema": {"type": "string"}, "value": "en"},
        {"key": "core.staff_roles", "schema": {"type": "list", "items": {"type": "role"}, "max_items": 10}, "value": []},
        {"key": "support.enabled", "schema": {"type": "bool"}, "value": true},
        {"key": "support.history_turns", "schema": {"type": "int", "min": 0, "max": 20}, "value": 4},
        {"key": "tickets.sla_first_response", "schema": {"type": "duration", "min": 60, "max": 604800}, "value": 3600},
        {"key": "support.channels", "schema": {"type": "list", "items": {"type": "channel"}, "max_items": 25}, "value": []},
        {"key": "faq.words", "schema": {"type": "list", "items": {"type": "string"}, "max_items": 50}, "value": []},
        {"key": "core.log_channel", "schema": {"type": "channel"}, "value": null},
    ]});
    Ok(Box::new(move |body: &[u8]| {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())?;
        let read = beacon_web::pages::settings_form(&settings, &form);
        for key in read.changes.keys().chain(read.errors.keys()) {
            assert!(read.keys.contains(key), "a field the form did not show was read: {key}");
        }
        assert!(read.changes.keys().all(|k| !read.errors.contains_key(k)), "a field both changed and refused");
        if read.errors.is_empty() { Ok(()) } else { Err("a field refused".into()) }
    }))
}

// ---------------------------------------------------------------------------------------------
// kb_index: the knowledge base's own index file on disk.

fn index_seed() -> Result<(beacon_kb::IndexStamp, Vec<u8>, tempfile::TempDir), String> {
    use beacon_kb::IndexedChunk;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let texts = ["Refunds are issued within 14 days.", "Run the MSI installer.", "Support hours: 9 to 5 — café ☕."];
    let chunks: Vec<IndexedChunk> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| IndexedChunk {
            chunk_id: 10 + i as i64,
            document_id: 100 + i as i64,
            document_key: format!("doc{i}.md"),
            title: format!("Doc {i}"),
            heading_path: vec!["Top".into()],
            text: (*t).to_owned(),
            embedding: Some((0..8).map(|j| if j == i { 1.0 } else { 0.0 }).collect()),
        })
        .collect();
    let index = beacon_kb::GuildIndex::build(chunks).map_err(|e| e.to_string())?;
    let stamp = beacon_kb::IndexStamp { guild_id: 7, version: 3, model: Some("m".into()) };
    let idx = beacon_kb::IndexDir::new(dir.path());
    idx.save(&stamp, &index).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(idx.path(7)).map_err(|e| e.to_string())?;
    Ok((stamp, bytes, dir))
}

fn index_seeds() -> Vec<Vec<u8>> {
    index_seed().map(|(_, b, _)| vec![b]).unwrap_or_default()
}

/// The index loader, [`beacon_kb::IndexDir::load`], on a mutated file — half of them resealed
/// with a valid checksum ([`beacon_kb::index_file::reseal`]), so the checks behind the checksum
/// are reached — and a search on whatever it accepts.
pub const KB_INDEX: Target = Target {
    name: "kb_index",
    about: "kb index files on disk (checksummed; hostile ones resealed): beacon_kb::IndexDir::load + search",
    max_len: 4 * 1024 * 1024,
    dictionary: &[
        b"BEACONKB",
        b"\x02\x00\x00\x00",
        b"\"chunks\":",
        b"\"dim\":",
        b"\"bm25_files\":",
        b"\"chunk_data_len\":",
        b"\xff\xff\xff\xff",
    ],
    json: false,
    builtin_seeds: index_seeds,
    generate: gen_index,
    make: make_index,
};

fn gen_index(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    // Half the time: a file the kb itself writes from hostile content (any text, ids, headings,
    // and vectors of any bits — NaN, infinities, subnormals), which the loader accepts, so the
    // search behind it runs on what an attacker who controls the indexed documents can shape.
    if u.arbitrary::<bool>()? {
        return index_of_hostile_content(u);
    }
    // Otherwise a header of the right shape with arbitrary numbers, then arbitrary sections.
    let header = json!({"stamp": {"guild_id": 7, "version": 3, "model": "m"}, "chunks": u.int_in_range(0..=64u32)?,
                        "dim": u.int_in_range(0..=16u32)?, "bm25_files": [["meta.json", u.int_in_range(0..=4096u32)?]],
                        "chunk_data_len": u.int_in_range(0..=4096u32)?});
    let header = serde_json::to_vec(&header).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let mut out = b"BEACONKB".to_vec();
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(u.bytes(u.len().min(8192))?);
    beacon_kb::index_file::reseal(&mut out);
    Ok(out)
}

fn index_of_hostile_content(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let dim = u.int_in_range(1..=8usize)?;
    let mut chunks = Vec::new();
    for _ in 0..u.int_in_range(1..=8u8)? {
        let embedding = if u.arbitrary::<bool>()? {
            let mut v = Vec::with_capacity(dim);
            for _ in 0..dim {
                v.push(f32::from_bits(u.arbitrary()?));
            }
            Some(v)
        } else {
            None
        };
        chunks.push(beacon_kb::IndexedChunk {
            chunk_id: u.arbitrary()?,
            document_id: u.arbitrary()?,
            document_key: u.arbitrary()?,
            title: u.arbitrary()?,
            heading_path: u.arbitrary()?,
            text: u.arbitrary()?,
            embedding,
        });
    }
    let index = beacon_kb::GuildIndex::build(chunks).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let dir = tempfile::tempdir().map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let idx = beacon_kb::IndexDir::new(dir.path());
    let stamp = beacon_kb::IndexStamp { guild_id: 7, version: 3, model: Some("m".into()) };
    idx.save(&stamp, &index).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    std::fs::read(idx.path(7)).map_err(|_| arbitrary::Error::IncorrectFormat)
}

fn make_index() -> Result<Runner, String> {
    let (stamp, _, dir) = index_seed()?;
    let idx = beacon_kb::IndexDir::new(dir.path());
    let path = idx.path(stamp.guild_id);
    let fusion = beacon_kb::FusionConfig::default();
    Ok(Box::new(move |input: &[u8]| {
        let _keep = &dir;
        let mut file = input.to_vec();
        if digest(input).is_multiple_of(2) {
            beacon_kb::index_file::reseal(&mut file);
        }
        std::fs::write(&path, &file).map_err(|e| e.to_string())?;
        match idx.load(&stamp) {
            Ok(Ok(index)) => {
                let q: Vec<f32> = (0..index.dense_dim().unwrap_or(0)).map(|i| if i == 1 { 1.0 } else { 0.0 }).collect();
                let v = index.dense_dim().map(|_| q.as_slice());
                index.search(&fusion, "refunds installer", v, 5).map(drop).map_err(|e| e.to_string())
            }
            Ok(Err(miss)) => Err(format!("{miss:?}")),
            Err(e) => Err(e.to_string()),
        }
    }))
}
