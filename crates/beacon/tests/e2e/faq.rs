//! The FAQ module end to end: every /faq command through the fake Discord, with autocomplete,
//! modals, buttons and staff-only refusals, over the gateway and over HTTP.

use beacon_faq::{EntryInput, FaqRepo, split_tags};
use beacon_testkit::{Delivery, InteractionOutcome};
use serde_json::{Value, json};

use crate::harness::*;

/// Makes the guild's "staff" role a staff role and adds a member holding it.
async fn staff_member(t: &TestApp) -> u64 {
    let staff_role = t.role("staff");
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &format!("<@&{staff_role}>"))])),
        Delivery::Http,
    )
    .await;
    t.fake.add_member(t.guild.id, None, "sam-staff", vec![staff_role]).expect("member added")
}

fn faq(name: &str, options: Value) -> Value {
    sub(name, options)
}

fn focused(sub_name: &str, option: &str, text: &str) -> Value {
    json!([{ "name": sub_name, "type": 1, "options": [
        { "name": option, "type": 3, "value": text, "focused": true }
    ]}])
}

fn choices(out: &InteractionOutcome) -> Vec<(String, String)> {
    out.data["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["name"].as_str().unwrap_or("").to_owned(), c["value"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn custom_ids(out: &InteractionOutcome) -> Vec<String> {
    let mut ids = Vec::new();
    fn walk(v: &Value, ids: &mut Vec<String>) {
        if let Some(id) = v.get("custom_id").and_then(Value::as_str) {
            ids.push(id.to_owned());
        }
        for key in ["components", "component"] {
            match v.get(key) {
                Some(Value::Array(items)) => items.iter().for_each(|i| walk(i, ids)),
                Some(obj @ Value::Object(_)) => walk(obj, ids),
                _ => {}
            }
        }
    }
    for c in out.data["components"].as_array().into_iter().flatten() {
        walk(c, &mut ids);
    }
    ids
}

async fn submit(t: &TestApp, user: u64, custom_id: &str, fields: &[(&str, &str)], via: Delivery) -> InteractionOutcome {
    let h = t.fake.submit_modal(t.guild.id, t.channel("general"), user, custom_id, fields, via).await.expect("submit");
    t.fake.wait_response(&h, WAIT).await.expect("modal answer")
}

async fn click(t: &TestApp, user: u64, custom_id: &str, via: Delivery) -> InteractionOutcome {
    // The message carrying the button: the latest one in the channel that has it.
    let general = t.channel("general");
    let message_id = t
        .fake
        .messages(general)
        .iter()
        .rev()
        .find(|m| m["components"].to_string().contains(&format!("\"{custom_id}\"")))
        .and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .unwrap_or_else(|| panic!("no message with button {custom_id}"));
    let h = t.fake.click_button(t.guild.id, general, user, message_id, custom_id, via).await.expect("click");
    t.fake.wait_response(&h, WAIT).await.expect("button answer")
}

const STAFF_ONLY: &str = "Only staff can use this";

#[tokio::test]
async fn staff_add_edit_and_remove_entries_that_members_find_while_typing() {
    let t = TestApp::spawn().await;
    let sam = staff_member(&t).await;
    let bob = t.member("bob");

    // Members cannot add; staff get the form.
    let out = t.command(bob, "faq", faq("add", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out = t
        .command(sam, "faq", faq("add", json!([{ "name": "pinned", "type": 5, "value": true }])), Delivery::Gateway)
        .await;
    assert_eq!(out.kind, 9, "a modal: {out:?}");
    assert_eq!(out.data["custom_id"], "faq:add:1");
    assert_eq!(custom_ids(&out), ["question", "answer", "tags"]);

    // A forged submission by a member is refused; staff's is stored.
    let fields = [
        ("question", "How do I reset my password?"),
        ("answer", "Open Settings, then Account, then Reset password. @everyone"),
        ("tags", "Account, login"),
    ];
    let out = submit(&t, bob, "faq:add:1", &fields, Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out = submit(&t, sam, "faq:add:1", &fields, Delivery::Gateway).await;
    assert!(text_of(&out).contains("Added FAQ #1"), "{}", text_of(&out));
    assert!(is_ephemeral(&out));
    let out = submit(
        &t,
        sam,
        "faq:add:0",
        &[("question", "Where do I download the app?"), ("answer", "From the downloads page."), ("tags", "")],
        Delivery::Http,
    )
    .await;
    assert!(text_of(&out).contains("Added FAQ #2"), "{}", text_of(&out));
    let out =
        submit(&t, sam, "faq:add:0", &[("question", "how do i reset my PASSWORD?"), ("answer", "dup")], Delivery::Http)
            .await;
    assert!(text_of(&out).contains("#1 already asks"), "{}", text_of(&out));

    // Suggestions while typing, typos included, over both transports.
    for via in [Delivery::Gateway, Delivery::Http] {
        let out = t.autocomplete(bob, "faq", focused("search", "query", "pasword"), via).await;
        assert_eq!(out.kind, 8, "{via:?}: {out:?}");
        let c = choices(&out);
        assert_eq!(c.first().map(|c| c.1.as_str()), Some("#1"), "{via:?}: {c:?}");
        assert!(c[0].0.contains("📌 #1 · How do I reset my password?"), "{c:?}");
        let out = t.autocomplete(bob, "faq", focused("search", "query", "downl"), via).await;
        assert_eq!(choices(&out).first().map(|c| c.1.clone()), Some("#2".into()), "{via:?}");
    }
    // Empty input suggests pinned entries first; the id option offers numbers.
    let out = t.autocomplete(bob, "faq", focused("view", "id", ""), Delivery::Http).await;
    let c = choices(&out);
    assert_eq!(c.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(), ["1", "2"], "{c:?}");
    let out = t.autocomplete(bob, "faq", focused("view", "id", "2"), Delivery::Gateway).await;
    assert_eq!(choices(&out).first().map(|c| c.1.clone()), Some("2".into()));

    // Search: numbered results with a button per entry; the button shows the answer.
    let out = t.command(bob, "faq", faq("search", json!([opt_str("query", "reset pasword")])), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("**1. How do I reset my password?** `#1`"), "{text}");
    assert!(custom_ids(&out).contains(&"faq:view:1".to_owned()), "{out:?}");
    for via in [Delivery::Gateway, Delivery::Http] {
        let out = click(&t, bob, "faq:view:1", via).await;
        assert!(text_of(&out).contains("Open Settings, then Account"), "{via:?}: {}", text_of(&out));
        assert!(is_ephemeral(&out));
        // Answers never ping, whatever their text says.
        assert_eq!(out.data["allowed_mentions"]["parse"], json!([]), "{out:?}");
    }
    // A picked suggestion (#1) opens the entry.
    let out = t.command(bob, "faq", faq("search", json!([opt_str("query", "#2")])), Delivery::Gateway).await;
    assert!(text_of(&out).contains("From the downloads page."), "{}", text_of(&out));

    // Edit: the form comes prefilled; the index follows at once.
    let out = t.command(bob, "faq", faq("edit", json!([opt_str("id", "1")])), Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out = t.command(sam, "faq", faq("edit", json!([opt_str("id", "1")])), Delivery::Http).await;
    assert_eq!(out.kind, 9, "{out:?}");
    assert_eq!(out.data["custom_id"], "faq:edit:1:-");
    assert!(out.data.to_string().contains("How do I reset my password?"), "prefilled: {out:?}");
    let out = submit(
        &t,
        sam,
        "faq:edit:1:-",
        &[
            ("question", "How do I change my login passphrase?"),
            ("answer", "Settings → Security."),
            ("tags", "security"),
        ],
        Delivery::Gateway,
    )
    .await;
    assert!(text_of(&out).contains("Saved FAQ #1"), "{}", text_of(&out));
    let out = t.autocomplete(bob, "faq", focused("search", "query", "passphr"), Delivery::Http).await;
    assert_eq!(choices(&out).first().map(|c| c.1.clone()), Some("#1".into()));
    let out = t.command(bob, "faq", faq("view", json!([opt_str("id", "#1")])), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("#1 · How do I change my login passphrase?"), "{text}");
    assert!(text.contains("Settings → Security."), "{text}");
    assert!(!is_ephemeral(&out), "/faq view shares the answer");
    let out = t.command(bob, "faq", faq("view", json!([opt_str("id", "99")])), Delivery::Http).await;
    assert!(text_of(&out).contains("no FAQ entry #99"), "{}", text_of(&out));

    // Remove asks first; only staff can confirm.
    let out = t.command(sam, "faq", faq("remove", json!([opt_str("id", "1")])), Delivery::Gateway).await;
    assert!(text_of(&out).contains("Remove FAQ #1"), "{}", text_of(&out));
    assert_eq!(custom_ids(&out), ["faq:rm:1", "faq:keep:1"]);
    let out = click(&t, bob, "faq:rm:1", Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out = click(&t, sam, "faq:keep:1", Delivery::Http).await;
    assert_eq!(out.kind, 7, "{out:?}");
    assert!(text_of(&out).contains("Kept FAQ #1"), "{}", text_of(&out));
    // "Keep" took the buttons away; ask again and confirm this time.
    t.command(sam, "faq", faq("remove", json!([opt_str("id", "#1")])), Delivery::Http).await;
    let out = click(&t, sam, "faq:rm:1", Delivery::Gateway).await;
    assert_eq!(out.kind, 7, "the confirmation is replaced: {out:?}");
    assert!(text_of(&out).contains("Removed FAQ #1"), "{}", text_of(&out));
    let out = t.command(bob, "faq", faq("search", json!([opt_str("query", "passphrase")])), Delivery::Http).await;
    assert!(text_of(&out).contains("Nothing in the FAQ matches"), "{}", text_of(&out));
    let out = t.autocomplete(bob, "faq", focused("search", "query", "passphr"), Delivery::Gateway).await;
    assert!(choices(&out).is_empty(), "{out:?}");

    // The knowledge-base feed has all of it, removal included.
    let repo = FaqRepo::new(t.app().store.clone());
    let feed = repo.entries_since(&t.app().store.guild(t.guild.id), 0).await.unwrap();
    assert_eq!(feed.len(), 2);
    assert!(feed.iter().any(|e| e.id == 1 && e.deleted_at.is_some()));
    assert_eq!(feed.iter().find(|e| e.id == 2).map(|e| e.views), Some(1));
    t.stop().await;
}

#[tokio::test]
async fn list_gaps_export_and_import() {
    let t = TestApp::spawn().await;
    let sam = staff_member(&t).await;
    let bob = t.member("bob");
    let guild = t.app().store.guild(t.guild.id);
    let repo = FaqRepo::new(t.app().store.clone());
    for (q, a, pinned) in [
        ("How do refunds work?", "Within 5 days.", true),
        ("Opening hours?", "9 to 5.", false),
        ("Is there an API?", "Yes, v2.", false),
    ] {
        let input = EntryInput::new(q, a, &split_tags("general"), pinned).unwrap();
        repo.add(&guild, &input, sam).await.unwrap();
    }

    // Lists: recent (newest first) and pinned.
    let out = t.command(bob, "faq", faq("list", json!([])), Delivery::Gateway).await;
    let text = text_of(&out);
    let api = text.find("`#3` Is there an API?").expect(&text);
    let refunds = text.find("📌 `#1` How do refunds work?").expect(&text);
    assert!(api < refunds, "most recent first: {text}");
    let footer = out.data["embeds"][0]["footer"]["text"].as_str().unwrap_or_default();
    assert!(footer.starts_with("Page 1 of 1 · 3 entries"), "{footer}");
    let out = t.command(bob, "faq", faq("list", json!([opt_str("show", "pinned")])), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("How do refunds work?") && !text.contains("Opening hours"), "{text}");
    let out =
        t.command(bob, "faq", faq("list", json!([{ "name": "page", "type": 4, "value": 5 }])), Delivery::Http).await;
    assert!(text_of(&out).contains("There is no page 5"), "{}", text_of(&out));

    // Searches that find nothing become gaps (autocomplete keystrokes are not logged).
    for q in ["Dark mode?", "dark   MODE", "refunds", "webhooks", "invoice for bob.smith@example.com"] {
        t.command(bob, "faq", faq("search", json!([opt_str("query", q)])), Delivery::Http).await;
    }
    t.autocomplete(bob, "faq", focused("search", "query", "typing only"), Delivery::Http).await;
    let out = t.command(bob, "faq", faq("gaps", json!([])), Delivery::Gateway).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out =
        t.command(sam, "faq", faq("gaps", json!([{ "name": "days", "type": 4, "value": 7 }])), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("**1.** `dark mode` — 2 searches"), "{text}");
    assert!(text.contains("`webhooks` — 1 search,"), "{text}");
    assert!(!text.contains("refunds") && !text.contains("typing"), "{text}");
    // Personal data in a search is not stored, nor shown.
    assert!(text.contains("`invoice for email` — 1 search,"), "{text}");
    assert!(!text.contains("smith") && !text.contains("example"), "{text}");

    // Export: a CSV file on the (deferred, then edited) answer, over both transports.
    let out = t.command(bob, "faq", faq("export", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    for via in [Delivery::Http, Delivery::Gateway] {
        let out = t.command(sam, "faq", faq("export", json!([])), via).await;
        assert_eq!(out.kind, 5, "{via:?}: {out:?}");
        assert!(text_of(&out).contains("3 FAQ entries exported"), "{via:?}: {}", text_of(&out));
        let edit = t
            .fake
            .requests()
            .into_iter()
            .rev()
            .find(|r| {
                r.method == "PATCH" && r.path.contains("/messages/@original") && r.body.to_string().contains("exported")
            })
            .expect("the export edit");
        assert_eq!(edit.body["attachments"][0]["filename"], format!("faq-{}.csv", t.guild.id), "{edit:?}");
    }

    // Import: staff only, and it needs a file (the fake Discord sends no resolved attachments,
    // so the download and CSV path is covered by the crate's own tests).
    let file = json!([{ "name": "import", "type": 1, "options": [{ "name": "file", "type": 11, "value": "123" }] }]);
    let out = t.command(bob, "faq", file.clone(), Delivery::Http).await;
    assert!(text_of(&out).contains(STAFF_ONLY), "{}", text_of(&out));
    let out = t.command(sam, "faq", file, Delivery::Gateway).await;
    assert!(text_of(&out).contains("Attach a CSV file"), "{}", text_of(&out));

    // Another guild sees none of it.
    let other = t.fake.create_guild(guild_spec());
    let mut inv = t.invocation(other.members[2].user_id, "faq", focused("search", "query", "refunds"));
    inv.guild_id = other.id;
    inv.channel_id = other.channels[0].id;
    let h = t.fake.autocomplete(inv, Delivery::Http).await.unwrap();
    let out = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(choices(&out).is_empty(), "{out:?}");
    t.stop().await;
}
