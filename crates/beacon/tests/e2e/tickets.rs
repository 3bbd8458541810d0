//! The ticket desk through the fake Discord: the whole lifecycle (open, claim, wait, escalate,
//! close with a transcript, feedback, reopen), the limits, the SLA clock pausing while waiting
//! for the member, stats, the CSV export and the support handoff.

use std::time::Duration;

use beacon_testkit::{Delivery, InteractionOutcome};
use serde_json::{Value, json};

use crate::harness::*;

struct Desk {
    t: TestApp,
    staff: u64,
    bob: u64,
}

/// The app's HTTP clients need the TLS provider that `main` installs in the binary.
async fn spawn() -> TestApp {
    beacon_testkit::install_tls_provider();
    TestApp::spawn().await
}

/// A guild with a staff role and member, tickets in #support, logs in #mod-log.
async fn desk() -> Desk {
    desk_on(spawn().await).await
}

/// The same desk on `t`.
async fn desk_on(t: TestApp) -> Desk {
    let staff_role = t.role("staff");
    let staff = t.fake.add_member(t.guild.id, None, "sam-staff", vec![staff_role]).expect("staff member");
    set(&t, "core.staff_roles", &format!("<@&{staff_role}>")).await;
    set(&t, "core.log_channel", &format!("<#{}>", t.channel("mod-log"))).await;
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    let bob = t.member("bob");
    Desk { t, staff, bob }
}

/// `<#123>` in a reply → 123.
fn channel_in(text: &str) -> u64 {
    let start = text.find("<#").unwrap_or_else(|| panic!("no channel mention in {text}")) + 2;
    let rest = &text[start..];
    rest[..rest.find('>').expect("closing >")].parse().expect("channel id")
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("message id")
}

fn embed_text(v: &Value) -> String {
    serde_json::to_string(&v["embeds"]).unwrap_or_default()
}

impl Desk {
    async fn open(&self, user: u64, topic: &str) -> InteractionOutcome {
        self.t.command(user, "ticket", sub("open", json!([opt_str("topic", topic)])), Delivery::Gateway).await
    }

    async fn click(&self, channel: u64, user: u64, message: u64, custom_id: &str) -> InteractionOutcome {
        let h = self
            .t
            .fake
            .click_button(self.t.guild.id, channel, user, message, custom_id, Delivery::Gateway)
            .await
            .expect("click");
        self.t.fake.wait_response(&h, WAIT).await.expect("button answer")
    }

    /// The ticket's embed message: the first message in its thread.
    fn ticket_message(&self, thread: u64) -> Value {
        self.t
            .fake
            .messages(thread)
            .into_iter()
            .find(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
            .expect("ticket embed message")
    }

    async fn wait_message(&self, channel: u64, needle: &str) -> Value {
        let needle = needle.to_owned();
        self.t
            .fake
            .wait_for_message(channel, WAIT, |m| {
                m["content"].as_str().is_some_and(|c| c.contains(&needle)) || embed_text(m).contains(&needle)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}: {:#?}", self.t.fake.messages(channel)))
    }
}

#[tokio::test]
async fn the_whole_lifecycle() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let out = d.open(bob, "Cannot log in since Tuesday").await;
    assert!(is_ephemeral(&out), "{out:?}");
    let text = text_of(&out);
    assert!(text.contains("Your ticket #0001 is open"), "{text}");
    let thread = channel_in(&text);
    // A private thread under #support, with the member added and the staff role mentioned.
    let create =
        t.fake.wait_for_request("POST", &format!("/channels/{}/threads", t.channel("support")), WAIT).await.unwrap();
    assert_eq!(create.body["type"], 12, "{:?}", create.body);
    t.fake.wait_for_request("PUT", &format!("/channels/{thread}/thread-members/{bob}"), WAIT).await.unwrap();
    let first = d.ticket_message(thread);
    let content = first["content"].as_str().unwrap_or_default();
    assert!(
        content.contains(&format!("<@{bob}>")) && content.contains(&format!("<@&{}>", t.role("staff"))),
        "{content}"
    );
    assert!(embed_text(&first).contains("🟢 Open"), "{first}");
    let msg = id_of(&first);

    // Members cannot use staff buttons.
    let out = d.click(thread, bob, msg, "tickets:claim:1").await;
    assert!(text_of(&out).contains("Only staff"), "{out:?}");

    let out = d.click(thread, sam, msg, "tickets:claim:1").await;
    assert_eq!(out.kind, 7, "{out:?}");
    assert!(embed_text(&out.data).contains("🔵 Claimed"), "{out:?}");
    assert!(embed_text(&out.data).contains(&format!("claimed by <@{sam}>")));

    t.fake.send_message(t.guild.id, thread, sam, "Hi! Which browser do you use?").await.unwrap();
    let out = d.click(thread, sam, msg, "tickets:wait:1").await;
    assert!(embed_text(&out.data).contains("🟡 Waiting for user"), "{out:?}");
    // The member's answer ends the wait.
    t.fake.send_message(t.guild.id, thread, bob, "Firefox, with <b>html</b> in it").await.unwrap();
    d.wait_message(thread, "→ **🔵 Claimed** by").await;

    let out = d.click(thread, sam, msg, "tickets:escalate:1").await;
    assert!(embed_text(&out.data).contains("🔴 Escalated"), "{out:?}");

    // Suggest reply: staff only, ephemeral, and honest when the knowledge base has nothing
    // (drafts from a filled one are tested in support_answers.rs).
    let h = t.fake.click_button(t.guild.id, thread, sam, msg, "tickets:suggest:1", Delivery::Gateway).await.unwrap();
    let followups = t.fake.wait_followups(&h, 1, WAIT).await.unwrap();
    assert_eq!(followups[0]["flags"].as_u64().unwrap_or(0) & 64, 64, "{followups:?}");
    assert!(followups[0]["content"].as_str().unwrap_or("").contains("nothing confident"), "{followups:?}");

    // The member closes the ticket.
    let out = d.click(thread, bob, msg, "tickets:close:1").await;
    assert!(embed_text(&out.data).contains("⚫ Closed"), "{out:?}");
    let log = d.wait_message(t.channel("mod-log"), "Ticket #0001 closed").await;
    let log_text = embed_text(&log);
    // The link is Beacon's own, signed and expiring — not a path on the host.
    assert!(!log_text.contains("file://"), "{log_text}");
    let start = log_text.find("http://").expect("a transcript link");
    let link: String =
        log_text[start..].chars().take_while(|c| !c.is_whitespace() && !matches!(c, ')' | '"' | '\\')).collect();
    assert!(link.contains("/transcripts/guilds/") && link.contains("&sig="), "{link}");
    assert_eq!(log["attachments"][0]["filename"], "ticket-0001.html", "{log}");
    beacon_testkit::install_tls_provider();
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200, "{link}");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(page.text().await.unwrap().contains("Cannot log in since Tuesday"));
    // A changed signature, a changed ticket or a link without signature opens nothing.
    let forged = format!("{}x", &link[..link.len() - 1]);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
    let other = link.replace("/tickets/000001-", "/tickets/000002-");
    assert_eq!(reqwest::get(&other).await.unwrap().status(), 403);
    let unsigned = link.split('?').next().unwrap().to_owned();
    assert_eq!(reqwest::get(&unsigned).await.unwrap().status(), 403);
    t.fake.wait_for_request("PATCH", &format!("/channels/{thread}"), WAIT).await.expect("thread archived");

    // The transcript: a self-contained page with the messages, authors and times, escaped.
    let dir = t._data.path().join(format!("transcripts/guilds/{}/tickets", t.guild.id));
    let file = std::fs::read_dir(&dir).expect("transcript folder").next().expect("a transcript").unwrap().path();
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("Ticket #0001 — Cannot log in since Tuesday"));
    assert!(page.contains("Hi! Which browser do you use?"));
    assert!(page.contains("Firefox, with &lt;b&gt;html&lt;/b&gt; in it"));
    assert!(page.contains("sam-staff") && page.contains("bob"));
    assert!(!page.contains("<script") && !page.contains("http-equiv"));
    let year = page.find("<time datetime=\"20").is_some();
    assert!(year, "times are ISO-8601");

    // Feedback after close, through a modal.
    let prompt = d.wait_message(thread, "how did we do?").await;
    let out = d.click(thread, sam, id_of(&prompt), "tickets:feedback:1").await;
    assert!(text_of(&out).contains("Only the member"), "{out:?}");
    let out = d.click(thread, bob, id_of(&prompt), "tickets:feedback:1").await;
    assert_eq!(out.kind, 9, "{out:?}");
    let h = t
        .fake
        .submit_modal(
            t.guild.id,
            thread,
            bob,
            "tickets:feedback:1",
            &[("rating", "9"), ("comment", "")],
            Delivery::Gateway,
        )
        .await
        .unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("from 1 to 5"));
    let h = t
        .fake
        .submit_modal(
            t.guild.id,
            thread,
            bob,
            "tickets:feedback:1",
            &[("rating", "4"), ("comment", "quick and kind")],
            Delivery::Gateway,
        )
        .await
        .unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("Thank you"));
    d.wait_message(t.channel("mod-log"), "★★★★☆ (4/5)").await;

    // Reopen brings it back to the claimer, and unarchives the thread first.
    let out = d.click(thread, bob, msg, "tickets:reopen:1").await;
    assert!(embed_text(&out.data).contains("🔵 Claimed"), "{out:?}");
    let unarchived = t.fake.requests().iter().any(|r| {
        r.method == "PATCH" && r.path.ends_with(&format!("/channels/{thread}")) && r.body["archived"] == false
    });
    assert!(unarchived, "thread was not unarchived");

    // /ticket status moves it too, and closes it again.
    let out = t
        .command(
            sam,
            "ticket",
            sub("status", json!([{"name": "id", "type": 4, "value": 1}, opt_str("status", "closed")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("⚫ Closed"), "{}", text_of(&out));
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 2, "a transcript per close");
    d.t.stop().await;
}

#[tokio::test]
async fn limits_roles_cooldown_and_the_topic_form() {
    let d = desk().await;
    let (t, bob) = (&d.t, d.bob);
    set(t, "tickets.max_open", "1").await;
    assert!(text_of(&d.open(bob, "first").await).contains("#0001 is open"));
    let out = d.open(bob, "second").await;
    assert!(text_of(&out).contains("already have 1 open ticket"), "{}", text_of(&out));
    assert!(is_ephemeral(&out));

    set(t, "tickets.max_open", "5").await;
    set(t, "tickets.cooldown", "1h").await;
    let out = d.open(bob, "second").await;
    assert!(text_of(&out).contains("opened a ticket recently"), "{}", text_of(&out));

    set(t, "tickets.cooldown", "0s").await;
    set(t, "tickets.required_roles", &format!("<@&{}>", t.role("admin"))).await;
    let out = d.open(bob, "second").await;
    assert!(text_of(&out).contains("You need one of these roles"), "{}", text_of(&out));

    // Without a topic, a form asks for it.
    let alice = t.member("alice-admin");
    let out = t.command(alice, "ticket", sub("open", json!([])), Delivery::Http).await;
    assert_eq!(out.kind, 9, "{out:?}");
    assert_eq!(out.data["custom_id"], "tickets:open");
    let h = t
        .fake
        .submit_modal(t.guild.id, t.channel("general"), alice, "tickets:open", &[("topic", "Billing")], Delivery::Http)
        .await
        .unwrap();
    let out = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(text_of(&out).contains("#0002 is open"), "{}", text_of(&out));

    // The panel's button opens the same form.
    let out = t.command(t.owner(), "ticket", panel_cmd("post", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("panel posted"), "{}", text_of(&out));
    let panel = d.wait_message(t.channel("general"), "Need help?").await;
    assert_eq!(panel["components"][0]["components"][0]["custom_id"], "tickets:open");
    let out = d.click(t.channel("general"), bob, id_of(&panel), "tickets:open").await;
    assert_eq!(out.kind, 9, "{out:?}");
    d.t.stop().await;
}

#[tokio::test]
async fn the_sla_clock_pauses_while_waiting_for_the_member() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    set(t, "tickets.first_response_sla", "3s").await;
    let thread = channel_in(&text_of(&d.open(bob, "Slow one").await));
    let msg = id_of(&d.ticket_message(thread));
    let out = d.click(thread, sam, msg, "tickets:wait:1").await;
    assert!(embed_text(&out.data).contains("Waiting for user"), "{out:?}");
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    let sla = jobs.by_key(t.guild.id, "ticket:1:sla:first_response").await.unwrap().expect("sla job");
    assert_eq!(sla.state, beacon_jobs::JobState::Cancelled, "paused clock has no pending timer");
    // Well past the target while paused: no reminder.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let breached = |ms: &[Value]| ms.iter().any(|m| m["content"].as_str().is_some_and(|c| c.contains("SLA breached")));
    assert!(!breached(&t.fake.messages(thread)), "reminder while the clock was paused");
    // The member answers: the clock runs again, and the remaining time is not the full target.
    t.fake.send_message(t.guild.id, thread, bob, "here is the info").await.unwrap();
    let reminder = d.wait_message(thread, "SLA breached").await;
    let text = reminder["content"].as_str().unwrap();
    assert!(text.contains("first response") && text.contains(&format!("<@&{}>", t.role("staff"))), "{text}");
    let staff_ping = t.fake.requests().into_iter().any(|r| {
        r.method == "POST"
            && r.path.contains(&format!("/channels/{thread}/messages"))
            && r.body["content"].as_str().is_some_and(|c| c.contains("SLA breached"))
            && r.body["allowed_mentions"]["roles"] == json!([t.role("staff").to_string()])
    });
    assert!(staff_ping, "the reminder pings exactly the staff role");
    d.wait_message(thread, "**🔴 Escalated** by Beacon (automatic)").await;
    d.wait_message(t.channel("mod-log"), "SLA breached").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job = jobs.by_key(t.guild.id, "ticket:1:sla:first_response").await.unwrap().unwrap();
        if job.state == beacon_jobs::JobState::Done {
            assert_eq!(job.attempts, 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "SLA job never finished: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.t.stop().await;
}

#[tokio::test]
async fn auto_close_after_inactivity() {
    let d = desk().await;
    let (t, bob) = (&d.t, d.bob);
    set(t, "tickets.auto_close_after", "2s").await;
    let thread = channel_in(&text_of(&d.open(bob, "Forgotten").await));
    d.wait_message(thread, "no activity for").await;
    d.wait_message(t.channel("mod-log"), "Ticket #0001 closed").await;
    d.t.stop().await;
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn stats_and_csv_export() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let thread = channel_in(&text_of(&d.open(bob, "Refund, please \"now\"").await));
    let msg = id_of(&d.ticket_message(thread));
    d.click(thread, sam, msg, "tickets:claim:1").await;
    t.fake.send_message(t.guild.id, thread, sam, "On it").await.unwrap();
    d.wait_message(thread, "On it").await;
    d.click(thread, sam, msg, "tickets:close:1").await;
    d.wait_message(t.channel("mod-log"), "Ticket #0001 closed").await;

    let member = json!({"name": "member", "type": 6, "value": sam.to_string()});
    let out = t.command(sam, "ticket", sub("stats", json!([member, opt_str("period", "7d")])), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("Claims: 1"), "{text}");
    assert!(text.contains("avg over 1"), "{text}");
    let out = t.command(bob, "ticket", sub("stats", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("Only staff"), "{}", text_of(&out));

    let out = t
        .command(
            sam,
            "export",
            sub("tickets", json!([opt_str("from", "2000-01-01"), opt_str("to", "2099-12-31")])),
            Delivery::Gateway,
        )
        .await;
    assert!(text_of(&out).contains("1 ticket(s)"), "{out:?}");
    assert_eq!(out.data["attachments"][0]["filename"], "tickets-2000-01-01-2099-12-31.csv", "{out:?}");
    let out = t
        .command(
            sam,
            "export",
            sub("tickets", json!([opt_str("from", "last week"), opt_str("to", "2099-12-31")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("YYYY-MM-DD"), "{}", text_of(&out));
    // `/export faq` attaches the FAQ as the CSV `/faq import` reads.
    let out = t.command(sam, "export", sub("faq", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("0 FAQ entries"), "{out:?}");
    assert_eq!(out.data["attachments"][0]["filename"], "faq.csv", "{out:?}");
    // The fake keeps only the JSON part of multipart uploads, so the CSV itself is read back
    // from the same export function the command attaches.
    let (n, csv) = beacon_tickets::export_tickets(&t.app().store.guild(t.guild.id), 0, i64::MAX).await.unwrap();
    assert_eq!(n, 1);
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], beacon_tickets::TICKET_COLUMNS.to_vec());
    let r = &rows[1];
    assert_eq!(r[0], "1");
    assert_eq!(r[1], "closed");
    assert_eq!(r[2], "Refund, please \"now\"");
    assert_eq!(r[3], bob.to_string());
    assert_eq!(r[4], sam.to_string());
    assert!(r[5].ends_with('Z') && !r[6].is_empty() && !r[7].is_empty());
    assert!(r[13].starts_with(&format!("guilds/{}/tickets/000001-", t.guild.id)));
    d.t.stop().await;
}

#[tokio::test]
async fn support_handoff_opens_a_ticket_with_the_conversation() {
    let t = spawn().await;
    let bob = t.member("bob");
    let chat = "bob: how do I get a refund?\nbeacon: I am not sure; let me get a human.";
    // The support module reaches the desk only through the port the desk provides.
    let handoff = t.app().port::<dyn beacon_framework::HumanHandoff>().expect("the ticket desk provides the hand-off");
    assert!(handoff.available(t.app(), t.guild.id).await);
    let err = handoff.open(t.app(), t.guild.id, None, bob, "Refund", chat).await.unwrap_err();
    assert!(err.to_string().contains("tickets.channel"), "{err}");
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    let place = handoff.open(t.app(), t.guild.id, None, bob, "Refund", chat).await.unwrap();
    assert!(place.ends_with("(ticket #0001)"), "{place}");
    let channel_id: u64 = place.trim_start_matches("<#").split('>').next().unwrap().parse().unwrap();
    let messages = t.fake.messages(channel_id);
    let convo = messages
        .iter()
        .find(|m| m["content"].as_str().is_some_and(|c| c.contains("Conversation before this ticket")))
        .expect("conversation posted");
    assert!(convo["content"].as_str().unwrap().contains("> beacon: I am not sure"), "{convo}");
    assert_eq!(convo["attachments"][0]["filename"], "conversation.txt");
    assert!(embed_text(&messages[0]).contains("Refund"));
    set(&t, "tickets.enabled", "false").await;
    assert!(!handoff.available(t.app(), t.guild.id).await, "no hand-off where the desk is off");
    t.stop().await;
}

/// Reopening a ticket that was closed longer than its SLA does not breach at once: the clocks
/// start over (before, the time spent closed counted and staff were pinged on reopen). The same
/// for a ticket the member closed before any staff reply.
#[tokio::test]
async fn reopening_starts_the_sla_clocks_over() {
    let d = desk().await;
    let (t, bob) = (&d.t, d.bob);
    set(t, "tickets.first_response_sla", "2s").await;
    set(t, "tickets.resolution_sla", "2s").await;
    let thread = channel_in(&text_of(&d.open(bob, "Closed too soon").await));
    let msg = id_of(&d.ticket_message(thread));
    d.click(thread, bob, msg, "tickets:close:1").await;
    // Closed for longer than both targets.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reopened_at = beacon_store::now_ms();
    let out = d.click(thread, bob, msg, "tickets:reopen:1").await;
    assert!(embed_text(&out.data).contains("🟢 Open"), "{out:?}");
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    for clock in ["first_response", "resolution"] {
        let job = jobs.by_key(t.guild.id, &format!("ticket:1:sla:{clock}")).await.unwrap().expect("sla job");
        assert_eq!(job.state, beacon_jobs::JobState::Pending, "{clock}: {job:?}");
        assert!(
            job.run_at >= reopened_at + 1_500,
            "{clock} is due a full target after the reopen, not at once: {job:?}"
        );
    }
    let breached =
        t.fake.messages(thread).iter().any(|m| m["content"].as_str().is_some_and(|c| c.contains("SLA breached")));
    assert!(!breached, "no breach on reopen");
    let saved: i64 = sqlx::query_scalar("SELECT paused_ms FROM tickets WHERE guild_id = $1 AND number = 1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert!(saved >= 2_500, "the closed time is stored as paused time: {saved}");
    d.t.stop().await;
}

/// Staff bring another member into a ticket and take them out again — in a private thread
/// (thread members) and in channel mode (a permission overwrite); the opener always stays.
#[tokio::test]
async fn staff_add_and_remove_members() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let alice = t.member("alice-admin");
    let thread = channel_in(&text_of(&d.open(bob, "Shared account").await));
    let ticket = |sub_name: &str, user: u64| {
        sub(
            sub_name,
            json!([{"name": "id", "type": 4, "value": 1}, {"name": "user", "type": 6, "value": user.to_string()}]),
        )
    };
    // Members are refused; staff are not.
    let out = t.command(bob, "ticket", ticket("add", alice), Delivery::Http).await;
    assert!(!text_of(&out).contains("added to"), "{}", text_of(&out));
    let out = t.command(sam, "ticket", ticket("add", alice), Delivery::Http).await;
    assert!(text_of(&out).contains("added to ticket #0001"), "{}", text_of(&out));
    t.fake.wait_for_request("PUT", &format!("/channels/{thread}/thread-members/{alice}"), WAIT).await.expect("added");
    d.wait_message(thread, &format!("added <@{alice}>")).await;
    let out = t.command(sam, "ticket", ticket("remove", alice), Delivery::Gateway).await;
    assert!(text_of(&out).contains("taken out of"), "{}", text_of(&out));
    t.fake
        .wait_for_request("DELETE", &format!("/channels/{thread}/thread-members/{alice}"), WAIT)
        .await
        .expect("removed");
    let out = t.command(sam, "ticket", ticket("remove", bob), Delivery::Http).await;
    assert!(text_of(&out).contains("stays in it"), "{}", text_of(&out));

    // Channel mode: the member gets (and loses) a permission overwrite on the ticket channel.
    set(t, "tickets.mode", "channel").await;
    let channel = channel_in(&text_of(&d.open(alice, "Billing question").await));
    let out = t
        .command(
            sam,
            "ticket",
            sub(
                "add",
                json!([{"name": "id", "type": 4, "value": 2}, {"name": "user", "type": 6, "value": bob.to_string()}]),
            ),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("added to ticket #0002"), "{}", text_of(&out));
    t.fake
        .wait_for_request("PUT", &format!("/channels/{channel}/permissions/{bob}"), WAIT)
        .await
        .expect("overwrite set");
    t.fake.assert_no_violations();
    d.t.stop().await;
}

/// Staff block a member from opening tickets (they are told why when they try), then lift it.
/// The blocklist is the guild's data: a purge removes it.
#[tokio::test]
async fn blocked_members_cannot_open_tickets() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let user = |name: &str, id: u64| json!({"name": name, "type": 6, "value": id.to_string()});
    let out = t.command(bob, "ticket", sub("block", json!([user("user", sam)])), Delivery::Http).await;
    assert!(!text_of(&out).contains("can no longer"), "members cannot block: {}", text_of(&out));
    let out = t
        .command(
            sam,
            "ticket",
            sub("block", json!([user("user", bob), opt_str("reason", "spamming tickets")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("can no longer open tickets"), "{}", text_of(&out));
    let refused = d.open(bob, "Let me in").await;
    assert!(
        text_of(&refused).contains("can't open tickets in this server (spamming tickets)"),
        "{}",
        text_of(&refused)
    );
    assert_eq!(t.fake.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/threads")).count(), 0);
    let out = t.command(sam, "ticket", sub("unblock", json!([user("user", bob)])), Delivery::Gateway).await;
    assert!(text_of(&out).contains("can open tickets again"), "{}", text_of(&out));
    let opened = d.open(bob, "Thanks").await;
    assert!(text_of(&opened).contains("is open"), "{}", text_of(&opened));
    assert!(t.app().store.declared_guild_tables().contains(&"ticket_blocks"));
    d.t.stop().await;
}

/// `/ticket transcript` gives staff a closed ticket's transcript again: as a file, and behind
/// a fresh signed link; members and open tickets are refused with a reason.
#[tokio::test]
async fn staff_get_a_closed_tickets_transcript() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let thread = channel_in(&text_of(&d.open(bob, "Where is my parcel?").await));
    let transcript = || sub("transcript", json!([{"name": "id", "type": 4, "value": 1}]));
    let out = t.command(sam, "ticket", transcript(), Delivery::Http).await;
    assert!(text_of(&out).contains("no stored transcript"), "not closed yet: {}", text_of(&out));
    t.fake.send_message(t.guild.id, thread, bob, "It was due on Monday.").await.unwrap();
    let msg = id_of(&d.ticket_message(thread));
    d.click(thread, bob, msg, "tickets:close:1").await;
    d.wait_message(t.channel("mod-log"), "Ticket #0001 closed").await;
    let out = t.command(bob, "ticket", transcript(), Delivery::Http).await;
    assert!(!text_of(&out).contains("Transcript of ticket"), "members are refused: {}", text_of(&out));
    let out = t.command(sam, "ticket", transcript(), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("Transcript of ticket #0001"), "{text}");
    assert_eq!(out.data["attachments"][0]["filename"], "ticket-0001.html", "{out:?}");
    let start = text.find("http://").expect("a link");
    let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    beacon_testkit::install_tls_provider();
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200, "{link}");
    assert!(page.text().await.unwrap().contains("It was due on Monday."));
    d.t.stop().await;
}

/// The bodies Beacon posted to `channel` whose content contains `needle`.
fn posted(t: &TestApp, channel: u64, needle: &str) -> Vec<Value> {
    t.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/channels/{channel}/messages")))
        .map(|r| r.body)
        .filter(|b| b["content"].as_str().is_some_and(|c| c.contains(needle)))
        .collect()
}

/// The one body posted to `channel` containing `needle`.
fn posted_once(t: &TestApp, channel: u64, needle: &str) -> Value {
    let found = posted(t, channel, needle);
    assert_eq!(found.len(), 1, "one message with {needle:?} in {channel}: {found:#?}");
    found.into_iter().next().unwrap_or_default()
}

/// Exactly whom a message may ping: (users, roles); `parse` must be empty.
fn pings(body: &Value) -> (Vec<String>, Vec<String>) {
    let am = &body["allowed_mentions"];
    assert!(am.is_object(), "allowed_mentions is always sent: {body}");
    assert!(am["parse"].as_array().is_none_or(|p| p.is_empty()), "no blanket mentions: {body}");
    let list = |k: &str| {
        am[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect::<Vec<_>>()
    };
    (list("users"), list("roles"))
}

async fn wait_job_done(t: &TestApp, key: &str) -> beacon_jobs::JobRecord {
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job = jobs.by_key(t.guild.id, key).await.unwrap().unwrap_or_else(|| panic!("no job {key}"));
        if job.state == beacon_jobs::JobState::Done {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {key} never finished: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resolution SLA: a ticket answered in time but not closed within the target breaches —
/// the staff role is reminded (in the ticket and the log, pinging exactly that role), the ticket
/// is escalated by Beacon and the breach is stored; a ticket closed in time never breaches.
#[tokio::test]
async fn the_resolution_sla_breaches_and_escalates() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let staff_role = t.role("staff").to_string();
    set(t, "tickets.first_response_sla", "0s").await;
    set(t, "tickets.resolution_sla", "2s").await;
    let thread = channel_in(&text_of(&d.open(bob, "Still broken").await));
    // Answered at once: only the resolution clock is left.
    t.fake.send_message(t.guild.id, thread, sam, "Looking into it").await.unwrap();
    d.wait_message(thread, "Looking into it").await;
    // A second ticket, closed in time.
    let alice = t.member("alice-admin");
    let quick = channel_in(&text_of(&d.open(alice, "Quick one").await));
    d.click(quick, alice, id_of(&d.ticket_message(quick)), "tickets:close:2").await;

    let reminder = d.wait_message(thread, "SLA breached").await;
    let text = reminder["content"].as_str().unwrap_or_default();
    assert!(text.contains("ticket #0001") && text.contains("for a resolution"), "{text}");
    assert!(text.starts_with(&format!("<@&{staff_role}>")), "{text}");
    assert_eq!(pings(&posted_once(t, thread, "SLA breached")), (vec![], vec![staff_role.clone()]));
    let logged = d.wait_message(t.channel("mod-log"), "SLA breached").await;
    assert!(logged["content"].as_str().unwrap_or_default().contains("for a resolution"));
    d.wait_message(thread, "**🔴 Escalated** by Beacon (automatic)").await;
    wait_job_done(t, "ticket:1:sla:resolution").await;
    let embed = embed_text(&d.ticket_message(thread));
    assert!(embed.contains("🔴 Escalated"), "the ticket's embed shows the escalation: {embed}");
    let breached: (i64, i64) = sqlx::query_as(
        "SELECT resolution_breached, first_response_breached FROM tickets WHERE guild_id = $1 AND number = 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    assert_eq!(breached, (1, 0), "only the resolution SLA was missed");
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    let closed_in_time = jobs.by_key(t.guild.id, "ticket:2:sla:resolution").await.unwrap().expect("sla job");
    assert_eq!(closed_in_time.state, beacon_jobs::JobState::Cancelled, "closing stops the clock");
    assert!(posted(t, quick, "SLA breached").is_empty());
    d.t.stop().await;
}

/// Escalation to a role: the role is pinged in the ticket — only that role, nobody else — and,
/// in a ticket channel, it is let in (a permission overwrite), as it was not before.
#[tokio::test]
async fn escalation_pings_the_escalation_role_and_lets_it_in() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let seniors = t.role("admin");
    set(t, "tickets.escalation_role", &format!("<@&{seniors}>")).await;
    let thread = channel_in(&text_of(&d.open(bob, "Data loss").await));
    let msg = id_of(&d.ticket_message(thread));
    let out = d.click(thread, sam, msg, "tickets:escalate:1").await;
    assert!(embed_text(&out.data).contains("🔴 Escalated"), "{out:?}");
    let ping = posted_once(t, thread, "was escalated by");
    let text = ping["content"].as_str().unwrap_or_default();
    assert!(text.starts_with(&format!("<@&{seniors}> Ticket #0001 was escalated by <@{sam}>")), "{text}");
    assert_eq!(pings(&ping), (vec![], vec![seniors.to_string()]), "only the escalation role is pinged");
    // The status line pings nobody (ping on status is off by default).
    let status = posted_once(t, thread, "**🔴 Escalated** by");
    assert_eq!(pings(&status), (vec![], vec![]));

    // In channel mode, the escalation role gets into the ticket channel.
    set(t, "tickets.mode", "channel").await;
    let channel = channel_in(&text_of(&d.open(bob, "Billing broken").await));
    let created = t
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with(&format!("/guilds/{}/channels", t.guild.id)))
        .expect("ticket channel created");
    let has_overwrite = |body: &Value, id: u64| {
        body["permission_overwrites"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["id"].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(id))
    };
    assert!(!has_overwrite(&created.body, seniors), "not in the ticket before the escalation");
    let out = t
        .command(
            sam,
            "ticket",
            sub("status", json!([{"name": "id", "type": 4, "value": 2}, opt_str("status", "escalated")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("🔴 Escalated"), "{}", text_of(&out));
    let grant =
        t.fake.wait_for_request("PUT", &format!("/channels/{channel}/permissions/{seniors}"), WAIT).await.unwrap();
    assert_eq!(grant.body["type"], 0, "a role overwrite: {:?}", grant.body);
    let allow: u64 = grant.body["allow"].as_str().and_then(|a| a.parse().ok()).unwrap_or(0);
    assert_eq!(allow & (1 << 10 | 1 << 11), 1 << 10 | 1 << 11, "view and send: {:?}", grant.body);
    assert_eq!(pings(&posted_once(t, channel, "was escalated by")), (vec![], vec![seniors.to_string()]));
    d.t.stop().await;
}

/// Escalation to a channel: the notice (with the role ping and a link to the ticket) goes to
/// the escalation channel, not into the ticket; the private thread gets only a silent mention
/// that brings the role in. Without an escalation role, the notice pings nobody.
#[tokio::test]
async fn escalation_notice_goes_to_the_escalation_channel() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let seniors = t.role("admin");
    let escalations = t.channel("general");
    set(t, "tickets.escalation_channel", &format!("<#{escalations}>")).await;
    let thread = channel_in(&text_of(&d.open(bob, "Nobody answers").await));
    let msg = id_of(&d.ticket_message(thread));
    d.click(thread, sam, msg, "tickets:escalate:1").await;
    let notice = d.wait_message(escalations, "Ticket #0001 was escalated").await;
    assert!(notice["content"].as_str().unwrap_or_default().contains(&format!("in <#{thread}>")), "{notice}");
    assert_eq!(pings(&posted_once(t, escalations, "was escalated")), (vec![], vec![]), "no role set: no ping");
    assert!(posted(t, thread, "was escalated").is_empty(), "the notice is not in the ticket");

    set(t, "tickets.escalation_role", &format!("<@&{seniors}>")).await;
    d.click(thread, sam, msg, "tickets:claim:1").await;
    d.click(thread, sam, msg, "tickets:escalate:1").await;
    let notice = d.wait_message(escalations, &format!("<@&{seniors}> Ticket #0001 was escalated")).await;
    assert!(notice["content"].as_str().unwrap_or_default().contains(&format!("by <@{sam}>")), "{notice}");
    let bodies = posted(t, escalations, "was escalated");
    assert_eq!(pings(&bodies[1]), (vec![], vec![seniors.to_string()]), "exactly the escalation role");
    let joined = posted_once(t, thread, "joined this ticket for the escalation");
    assert_eq!(pings(&joined), (vec![], vec![seniors.to_string()]));
    assert_eq!(joined["flags"].as_u64().unwrap_or(0) & (1 << 12), 1 << 12, "silent: {joined}");
    d.t.stop().await;
}

/// Ping on status change: off by default (status lines ping nobody); on, a staff change pings
/// the member, and the member's own change (answering a wait, reopening) pings the staff
/// member who claimed the ticket — nobody is pinged about their own change.
#[tokio::test]
async fn status_changes_ping_per_the_setting() {
    let d = desk().await;
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let thread = channel_in(&text_of(&d.open(bob, "Printer on fire").await));
    let msg = id_of(&d.ticket_message(thread));
    d.click(thread, sam, msg, "tickets:claim:1").await;
    let line = posted_once(t, thread, "**🔵 Claimed** by");
    assert!(!line["content"].as_str().unwrap_or_default().contains(&format!("<@{bob}>")), "{line}");
    assert_eq!(pings(&line), (vec![], vec![]), "off by default");

    set(t, "tickets.ping_on_status", "true").await;
    d.click(thread, sam, msg, "tickets:wait:1").await;
    let line = posted_once(t, thread, "**🟡 Waiting for user** by");
    assert!(line["content"].as_str().unwrap_or_default().starts_with(&format!("<@{bob}> ")), "{line}");
    assert_eq!(pings(&line), (vec![bob.to_string()], vec![]), "the member hears of staff's change");
    // The member answers: the wait ends, and the claimer hears of it.
    t.fake.send_message(t.guild.id, thread, bob, "Still on fire").await.unwrap();
    d.wait_message(thread, "🟡 Waiting for user → **🔵 Claimed** by").await;
    let line = posted_once(t, thread, "🟡 Waiting for user → **🔵 Claimed** by");
    assert!(line["content"].as_str().unwrap_or_default().starts_with(&format!("<@{sam}> ")), "{line}");
    assert_eq!(pings(&line), (vec![sam.to_string()], vec![]), "the claimer, not the member");
    // It is still the staff member's ticket: the member's answer is no claim.
    let (claimer, claims): (i64, i64) = sqlx::query_as(
        "SELECT claimed_by, (SELECT COUNT(*) FROM ticket_events e WHERE e.guild_id = t.guild_id \
         AND e.kind = 'claim') FROM tickets t WHERE guild_id = $1 AND number = 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    assert_eq!((claimer, claims), (sam as i64, 1));
    // Staff close: the member is pinged; the member reopens: the claimer is.
    d.click(thread, sam, msg, "tickets:close:1").await;
    let line = posted_once(t, thread, "Ticket closed by");
    assert_eq!(pings(&line), (vec![bob.to_string()], vec![]), "{line}");
    d.click(thread, bob, msg, "tickets:reopen:1").await;
    let line = posted_once(t, thread, "⚫ Closed → **🔵 Claimed**");
    assert_eq!(pings(&line), (vec![sam.to_string()], vec![]), "{line}");

    // Off again: nobody is pinged.
    set(t, "tickets.ping_on_status", "false").await;
    d.click(thread, sam, msg, "tickets:escalate:1").await;
    assert_eq!(pings(&posted_once(t, thread, "**🔴 Escalated** by")), (vec![], vec![]));
    d.t.stop().await;
}

/// `/ticket panel <action>` with `options`.
fn panel_cmd(action: &str, options: Value) -> Value {
    json!([{"name": "panel", "type": 2, "options": [{"name": action, "type": 1, "options": options}]}])
}

fn opt_channel(name: &str, id: u64) -> Value {
    json!({"name": name, "type": 7, "value": id.to_string()})
}

fn opt_role(name: &str, id: u64) -> Value {
    json!({"name": name, "type": 8, "value": id.to_string()})
}

/// The custom id of the first button of a message.
fn button_id(m: &Value) -> String {
    m["components"][0]["components"][0]["custom_id"].as_str().unwrap_or_default().to_owned()
}

/// The (custom id, label) of each text input of a modal (inside labels or action rows).
fn modal_inputs(data: &Value) -> Vec<(String, String)> {
    data["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let input = if c["component"].is_object() { &c["component"] } else { &c["components"][0] };
            let label = c["label"].as_str().or(input["label"].as_str()).unwrap_or_default();
            (input["custom_id"].as_str().unwrap_or_default().to_owned(), label.to_owned())
        })
        .collect()
}

impl Desk {
    async fn panel(&self, user: u64, action: &str, options: Value) -> InteractionOutcome {
        self.t.command(user, "ticket", panel_cmd(action, options), Delivery::Http).await
    }

    async fn submit(&self, channel: u64, user: u64, custom_id: &str, fields: &[(&str, &str)]) -> InteractionOutcome {
        let h = self.t.fake.submit_modal(self.t.guild.id, channel, user, custom_id, fields, Delivery::Gateway).await;
        self.t.fake.wait_response(&h.expect("submit"), WAIT).await.expect("modal answer")
    }

    /// A new role in the guild, and a member holding it.
    async fn role_with_member(&self, role: &str, member: &str) -> (u64, u64) {
        let id = twilight_model::id::Id::new(self.t.guild.id);
        let role_id = self.t.app().http.create_role(id).name(role).await.unwrap().model().await.unwrap().id.get();
        let member = self.t.fake.add_member(self.t.guild.id, None, member, vec![role_id]).expect("member");
        (role_id, member)
    }
}

/// Two panels with their own place, staff role and form: each ticket lands where its panel
/// says (a thread under one channel, a channel in a category), shows the member's answers, and
/// only its panel's staff role is let in and may act on it — not the other panel's, nor the
/// guild's staff role. Panels are exported and purged with the guild.
#[tokio::test]
async fn panels_have_their_own_place_staff_and_form() {
    panels_scenario(desk().await).await;
}

/// The same on PostgreSQL (the panels table, the answers column and their queries).
#[tokio::test]
async fn panels_on_postgres() {
    beacon_testkit::install_tls_provider();
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else { return };
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_DATABASE_URL".into(), db.url.clone())],
        ..Options::default()
    })
    .await;
    panels_scenario(desk_on(t).await).await;
    db.drop_database().await;
}

async fn panels_scenario(d: Desk) {
    let (t, bob, sam) = (&d.t, d.bob, d.staff);
    let owner = t.owner();
    let staff_role = t.role("staff");
    let (billing, pat) = d.role_with_member("billing", "pat-billing").await;
    let (shipping, sid) = d.role_with_member("shipping", "sid-shipping").await;
    let category = t
        .app()
        .http
        .create_guild_channel(twilight_model::id::Id::new(t.guild.id), "Shipping tickets")
        .kind(twilight_model::channel::ChannelType::GuildCategory)
        .await
        .unwrap()
        .model()
        .await
        .unwrap()
        .id
        .get();
    let general = t.channel("general");

    let out = d
        .panel(
            owner,
            "create",
            json!([
                opt_str("name", "billing"),
                opt_str("title", "Billing help"),
                opt_channel("channel", general),
                opt_role("staff_role", billing),
                opt_str("questions", "Order number? | What went wrong?"),
            ]),
        )
        .await;
    assert!(is_ephemeral(&out) && text_of(&out).contains("Panel created: **billing**"), "{}", text_of(&out));
    let out = d
        .panel(
            owner,
            "create",
            json!([
                opt_str("name", "shipping"),
                opt_str("description", "Lost parcels and delays"),
                opt_channel("category", category),
                opt_role("staff_role", shipping),
                opt_str("questions", "Tracking code?"),
            ]),
        )
        .await;
    assert!(text_of(&out).contains("Panel created: **shipping**"), "{}", text_of(&out));
    let list = text_of(&d.panel(owner, "list", json!([])).await);
    assert!(list.contains(&format!("**billing** — threads under <#{general}>; staff <@&{billing}>")), "{list}");
    assert!(list.contains(&format!("**shipping** — channels in <#{category}>; staff <@&{shipping}>")), "{list}");

    // Each panel's message carries its own button.
    assert!(text_of(&d.panel(owner, "post", json!([opt_str("name", "billing")])).await).contains("posted"));
    assert!(text_of(&d.panel(owner, "post", json!([opt_str("name", "shipping")])).await).contains("posted"));
    let billing_msg = d.wait_message(general, "Billing help").await;
    let shipping_msg = d.wait_message(general, "Lost parcels and delays").await;
    let (billing_button, shipping_button) = (button_id(&billing_msg), button_id(&shipping_msg));
    assert!(billing_button.starts_with("tickets:open:") && shipping_button.starts_with("tickets:open:"));
    assert_ne!(billing_button, shipping_button);

    // Billing: the form asks the panel's questions; the ticket is a thread under #general.
    let form = d.click(general, bob, id_of(&billing_msg), &billing_button).await;
    assert_eq!(form.kind, 9, "{form:?}");
    assert_eq!(form.data["custom_id"], billing_button.as_str());
    assert_eq!(form.data["title"], "Billing help");
    assert_eq!(
        modal_inputs(&form.data),
        vec![("q0".into(), "Order number?".into()), ("q1".into(), "What went wrong?".into())]
    );
    let out = d.submit(general, bob, &billing_button, &[("q0", "A-1234"), ("q1", "Charged twice")]).await;
    assert!(text_of(&out).contains("#0001 is open"), "{}", text_of(&out));
    let thread = channel_in(&text_of(&out));
    let made = t.fake.wait_for_request("POST", &format!("/channels/{general}/threads"), WAIT).await.unwrap();
    assert_eq!(made.body["type"], 12, "a private thread under the panel's channel");
    let first = d.ticket_message(thread);
    let content = first["content"].as_str().unwrap_or_default();
    assert!(content.contains(&format!("<@&{billing}>")), "the panel's staff role is brought in: {content}");
    assert!(!content.contains(&format!("<@&{staff_role}>")), "not the guild's staff role: {content}");
    let opened = posted(t, thread, &format!("<@&{billing}>")).into_iter().next().expect("first message");
    assert_eq!(pings(&opened), (vec![bob.to_string()], vec![billing.to_string()]));
    let embed = embed_text(&first);
    assert!(embed.contains("Order number?") && embed.contains("A-1234"), "{embed}");
    assert!(embed.contains("What went wrong?") && embed.contains("Charged twice"), "{embed}");
    // Only the billing staff act on it.
    let msg = id_of(&first);
    for outsider in [sid, sam] {
        let out = d.click(thread, outsider, msg, "tickets:claim:1").await;
        assert!(text_of(&out).contains("Only this ticket's staff"), "{}", text_of(&out));
    }
    let out = d.click(thread, pat, msg, "tickets:claim:1").await;
    assert!(embed_text(&out.data).contains(&format!("claimed by <@{pat}>")), "{out:?}");
    // The same for the commands that name a ticket; members learn nothing of other tickets.
    let status = |n: i64| sub("status", json!([{"name": "id", "type": 4, "value": n}, opt_str("status", "open")]));
    let out = t.command(sid, "ticket", status(1), Delivery::Http).await;
    assert!(text_of(&out).contains(&format!("Only this ticket's staff (<@&{billing}>)")), "{}", text_of(&out));
    let out = t.command(bob, "ticket", status(99), Delivery::Http).await;
    assert!(text_of(&out).contains("Only staff") && !text_of(&out).contains("#0099"), "{}", text_of(&out));

    // Shipping: one question; the ticket is a channel in the category, for the shipping role
    // (whom its SLA reminder pings, too).
    set(t, "tickets.first_response_sla", "1s").await;
    let form = d.click(general, bob, id_of(&shipping_msg), &shipping_button).await;
    assert_eq!(modal_inputs(&form.data), vec![("q0".into(), "Tracking code?".into())]);
    let out = d.submit(general, bob, &shipping_button, &[("q0", "ZX-99")]).await;
    assert!(text_of(&out).contains("#0002 is open"), "{}", text_of(&out));
    let channel = channel_in(&text_of(&out));
    let made = t
        .fake
        .requests()
        .into_iter()
        .find(|r| {
            r.method == "POST"
                && r.path.ends_with(&format!("/guilds/{}/channels", t.guild.id))
                && r.body["name"] == "ticket-0002"
        })
        .expect("ticket channel created");
    assert_eq!(made.body["parent_id"], category.to_string(), "{:?}", made.body);
    let overwrites: Vec<String> = made.body["permission_overwrites"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["id"].as_str().map(str::to_owned))
        .collect();
    assert!(overwrites.contains(&shipping.to_string()), "{overwrites:?}");
    assert!(overwrites.contains(&bob.to_string()), "{overwrites:?}");
    assert!(
        !overwrites.contains(&billing.to_string()) && !overwrites.contains(&staff_role.to_string()),
        "{overwrites:?}"
    );
    let first = d.ticket_message(channel);
    assert!(embed_text(&first).contains("Tracking code?") && embed_text(&first).contains("ZX-99"));
    d.wait_message(channel, "SLA breached").await;
    assert_eq!(pings(&posted_once(t, channel, "SLA breached")), (vec![], vec![shipping.to_string()]));
    d.wait_message(channel, "**🔴 Escalated** by Beacon (automatic)").await;
    let out = d.click(channel, pat, id_of(&first), "tickets:claim:2").await;
    assert!(text_of(&out).contains("Only this ticket's staff"), "{}", text_of(&out));
    let out = d.click(channel, sid, id_of(&first), "tickets:claim:2").await;
    assert!(embed_text(&out.data).contains(&format!("claimed by <@{sid}>")), "{out:?}");
    // Closing a panel's ticket channel takes the member's right to write (its mode, not the guild's).
    d.click(channel, sid, id_of(&first), "tickets:close:2").await;
    t.fake.wait_for_request("PUT", &format!("/channels/{channel}/permissions/{bob}"), WAIT).await.expect("closed");

    // The answers are stored with the ticket and exported with it; panels have their own export.
    let (_, csv) = beacon_tickets::export_tickets(&t.app().store.guild(t.guild.id), 0, i64::MAX).await.unwrap();
    let rows = parse_csv(&csv);
    assert_eq!(rows[1][15], "Order number?: A-1234\nWhat went wrong?: Charged twice");
    let out = t.command(sam, "export", sub("ticket-panels", json!([])), Delivery::Http).await;
    assert!(text_of(&out).contains("2 ticket panel(s)"), "{}", text_of(&out));
    assert_eq!(out.data["attachments"][0]["filename"], "ticket-panels.csv", "{out:?}");

    // A purge removes the panels with the rest of the guild's data.
    assert!(t.app().store.declared_guild_tables().contains(&"ticket_panels"));
    t.app().purge_guild(t.guild.id).await.expect("purge");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ticket_panels WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    d.t.stop().await;
}

/// Bad panel input is refused with a reason, ephemerally, and nothing is stored; members
/// cannot manage panels; a deleted panel's button says so; the default panel is unchanged.
#[tokio::test]
async fn panel_input_is_checked() {
    let d = desk().await;
    let (t, bob) = (&d.t, d.bob);
    let owner = t.owner();
    let general = t.channel("general");
    let refused = |out: &InteractionOutcome, needle: &str| {
        assert!(is_ephemeral(out), "{out:?}");
        let text = text_of(out);
        assert!(text.contains(needle), "expected {needle:?} in {text}");
    };
    refused(&d.panel(bob, "create", json!([opt_str("name", "mine")])).await, "Only the server owner");
    refused(&d.panel(owner, "create", json!([opt_str("name", "Bad Name!")])).await, "is not a panel name");
    refused(
        &d.panel(
            owner,
            "create",
            json!([opt_str("name", "x"), opt_channel("channel", general), opt_channel("category", general)]),
        )
        .await,
        "not both",
    );
    refused(
        &d.panel(owner, "create", json!([opt_str("name", "x"), opt_channel("category", general)])).await,
        "is not a category",
    );
    refused(
        &d.panel(owner, "create", json!([opt_str("name", "x"), opt_str("questions", "a|b|c|d|e|f")])).await,
        "at most 5 questions",
    );
    let long = "Why is this question far longer than Discord allows?";
    refused(
        &d.panel(owner, "create", json!([opt_str("name", "x"), opt_str("questions", &format!("Ok? | {long}"))])).await,
        "Question 2 is 52 characters long",
    );
    refused(
        &d.panel(owner, "create", json!([opt_str("name", "x"), opt_str("questions", " | ")])).await,
        "at least one question",
    );
    refused(
        &d.panel(owner, "edit", json!([opt_str("name", "nope"), opt_str("title", "T")])).await,
        "no panel named `nope`",
    );
    refused(&d.panel(owner, "post", json!([opt_str("name", "nope")])).await, "no panel named `nope`");
    let list = text_of(&d.panel(owner, "list", json!([])).await);
    assert!(list.contains("No panels yet"), "nothing was stored: {list}");

    let out = d.panel(owner, "create", json!([opt_str("name", "General")])).await;
    assert!(text_of(&out).contains("**general**"), "names are lowercase: {}", text_of(&out));
    refused(&d.panel(owner, "create", json!([opt_str("name", "general")])).await, "already a panel named `general`");
    refused(&d.panel(owner, "edit", json!([opt_str("name", "general")])).await, "Nothing to change");
    let out = d.panel(owner, "edit", json!([opt_str("name", "general"), opt_str("questions", "What happened?")])).await;
    assert!(text_of(&out).contains("asks \"What happened?\""), "{}", text_of(&out));
    d.panel(owner, "post", json!([opt_str("name", "general")])).await;
    let posted_panel = d.wait_message(general, "Need help?").await;
    let button = button_id(&posted_panel);
    assert!(button.starts_with("tickets:open:"), "{button}");
    let out = d.panel(owner, "delete", json!([opt_str("name", "general")])).await;
    assert!(text_of(&out).contains("Panel `general` deleted"), "{}", text_of(&out));
    let out = d.click(general, bob, id_of(&posted_panel), &button).await;
    refused(&out, "panel was deleted");
    let out = d.submit(general, bob, &button, &[("q0", "late answer")]).await;
    refused(&out, "panel was deleted");

    // The default panel, as before panels existed: `tickets:open`, the topic form, #support.
    d.panel(owner, "post", json!([])).await;
    let default =
        t.fake.wait_for_message(general, WAIT, |m| button_id(m) == "tickets:open").await.expect("default panel posted");
    let form = d.click(general, bob, id_of(&default), "tickets:open").await;
    assert_eq!(form.data["custom_id"], "tickets:open");
    assert_eq!(modal_inputs(&form.data), vec![("topic".into(), "What do you need help with?".into())]);
    let out = d.submit(general, bob, "tickets:open", &[("topic", "Plain ticket")]).await;
    assert!(text_of(&out).contains("#0001 is open"), "{}", text_of(&out));
    t.fake.wait_for_request("POST", &format!("/channels/{}/threads", t.channel("support")), WAIT).await.unwrap();
    let thread = channel_in(&text_of(&out));
    let first = d.ticket_message(thread);
    assert!(first["content"].as_str().unwrap_or_default().contains(&format!("<@&{}>", t.role("staff"))));
    d.t.stop().await;
}
