//! The knowledge base learning from staff, end to end: a resolved ticket answers the next member
//! who asks the same question and stops when removed (by staff, or by turning the setting off);
//! a 👎 offers staff the correction, which changes the next answer; the gaps report ranks the
//! questions Beacon abstained on or that got 👎.

use std::time::Duration;

use beacon_testkit::Delivery;
use serde_json::{Value, json};

use crate::harness::*;

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page, choose the order and press Request refund. Refunds reach your card in 5 business days.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen and follow the link we e-mail you.\n",
    ),
];

/// The app with two documents in the guild's knowledge base, staff (`sam-staff`), tickets in
/// #support, Beacon's log in #mod-log, and every message in #general a question answered inline.
async fn spawn() -> (TestApp, u64) {
    beacon_testkit::install_tls_provider();
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in DOCS {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    let staff = t.fake.add_member(t.guild.id, None, "sam-staff", vec![t.role("staff")]).unwrap();
    set(&t, "core.staff_roles", &format!("<@&{}>", t.role("staff"))).await;
    set(&t, "core.log_channel", &format!("<#{}>", t.channel("mod-log"))).await;
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    set(&t, "support.channels", &format!("<#{}>", t.channel("general"))).await;
    set(&t, "support.reply_in_thread", "false").await;
    set(&t, "support.user_per_minute", "60").await;
    (t, staff)
}

fn buttons(v: &Value) -> Vec<String> {
    v["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_owned))
        .collect()
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("message id")
}

async fn wait_message(t: &TestApp, channel: u64, needle: &str) -> Value {
    let needle = needle.to_owned();
    t.fake
        .wait_for_message(channel, WAIT, |m| m["content"].as_str().is_some_and(|c| c.contains(&needle)))
        .await
        .unwrap_or_else(|e| panic!("{e}: {:#?}", t.fake.messages(channel)))
}

/// `user` asks `question` in #general; Beacon's reply to it.
async fn ask_in_channel(t: &TestApp, user: u64, question: &str) -> String {
    let general = t.channel("general");
    let asked = t.fake.send_message(t.guild.id, general, user, question).await.unwrap().to_string();
    let reply = t
        .fake
        .wait_for_message(general, WAIT, |m| m["message_reference"]["message_id"].as_str() == Some(asked.as_str()))
        .await
        .unwrap_or_else(|e| panic!("{e}: {:#?}", t.fake.messages(general)));
    reply["content"].as_str().unwrap_or_default().to_owned()
}

/// Asks `question` in #general until Beacon's reply satisfies `want` (the knowledge base takes a
/// change in within a second or so); the last reply.
async fn ask_until(t: &TestApp, user: u64, question: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = ask_in_channel(t, user, question).await;
        if want(&reply) {
            return reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "never the reply wanted; the last: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many documents of `source` the guild's knowledge base holds, once it equals `want`.
async fn wait_documents(t: &TestApp, source: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kb_documents WHERE guild_id = $1 AND source = $2")
            .bind(t.guild.id as i64)
            .bind(source)
            .fetch_one(t.app().store.pool())
            .await
            .unwrap();
        if n == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{source} documents: {n}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens ticket `number` for `member` about `topic`, where `staff` answers; returns the thread
/// and the ticket's message.
async fn answered_ticket(t: &TestApp, member: u64, staff: u64, number: i64, topic: &str, answer: &str) -> (u64, u64) {
    t.command(member, "ticket", sub("open", json!([opt_str("topic", topic)])), Delivery::Gateway).await;
    let thread: i64 = sqlx::query_scalar("SELECT channel_id FROM tickets WHERE guild_id = $1 AND number = $2")
        .bind(t.guild.id as i64)
        .bind(number)
        .fetch_one(t.app().store.pool())
        .await
        .expect("the ticket has a thread");
    let thread = thread as u64;
    t.fake.send_message(t.guild.id, thread, member, "It's urgent, call me on +44 20 7946 0958").await.unwrap();
    t.fake.send_message(t.guild.id, thread, staff, answer).await.unwrap();
    let message = t
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .expect("the ticket's message");
    (thread, id_of(&message))
}

async fn click(
    t: &TestApp,
    channel: u64,
    user: u64,
    message: u64,
    custom_id: &str,
) -> beacon_testkit::InteractionOutcome {
    let h = t.fake.click_button(t.guild.id, channel, user, message, custom_id, Delivery::Gateway).await.unwrap();
    t.fake.wait_response(&h, WAIT).await.unwrap()
}

/// A member's ticket, answered by staff and closed as resolved, answers the next member who asks
/// the same question in the support channel — the staff answer, with the ticket as its source,
/// personal data removed. Staff remove it (`/ticket forget`) and the question no longer gets
/// it; a reopen and deleting a ticket's thread remove it; turning `tickets.learn_from_resolved` off removes
/// every resolved ticket.
#[tokio::test]
async fn a_resolved_ticket_answers_the_next_member_until_it_is_removed() {
    let (t, sam) = spawn().await;
    let (bob, alice) = (t.member("bob"), t.member("alice-admin"));
    let question = "How do I move my subscription to another account?";
    let answer =
        "Hi <@BOB>! Write to billing@example.com from both accounts and we move the subscription within a day.";
    let answer = answer.replace("BOB", &bob.to_string());

    // Off by default: a resolved ticket teaches nothing.
    let (thread, message) = answered_ticket(&t, bob, sam, 1, question, &answer).await;
    let out = click(&t, thread, bob, message, "tickets:resolve:1").await;
    assert!(text_of(&out).contains("Only staff"), "members cannot resolve: {out:?}");
    let out = click(&t, thread, sam, message, "tickets:resolve:1").await;
    assert!(serde_json::to_string(&out.data).unwrap().contains("Closed"), "{out:?}");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ticket_knowledge WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 0, "the setting is off");
    assert!(!ask_in_channel(&t, alice, question).await.contains("within a day"));

    set(&t, "tickets.learn_from_resolved", "true").await;
    let (thread, message) = answered_ticket(&t, bob, sam, 2, question, &answer).await;
    click(&t, thread, sam, message, "tickets:resolve:2").await;
    let notice = wait_message(&t, thread, "now in the knowledge base").await;
    assert_eq!(buttons(&notice), vec!["tickets:forget:2".to_owned()]);
    let (q, a): (String, String) =
        sqlx::query_as("SELECT question, answer FROM ticket_knowledge WHERE guild_id = $1 AND number = 2")
            .bind(t.guild.id as i64)
            .fetch_one(t.app().store.pool())
            .await
            .unwrap();
    assert_eq!(q, question);
    assert!(a.contains("[email]") && !a.contains("billing@example.com") && !a.contains("<@"), "{a}");
    assert!(!a.contains("urgent"), "the member's own messages are not the answer: {a}");
    wait_documents(&t, "tickets", 1).await;

    let reply = ask_until(&t, alice, question, |r| r.contains("within a day")).await;
    assert!(reply.contains("ticket #0002"), "with the ticket as its source: {reply}");
    assert!(!reply.contains("billing@example.com"), "{reply}");

    // Staff remove it; the question no longer gets it.
    let out =
        t.command(bob, "ticket", sub("forget", json!([{"name": "id", "type": 4, "value": 2}])), Delivery::Http).await;
    assert!(!text_of(&out).contains("removed"), "members cannot: {}", text_of(&out));
    let out =
        t.command(sam, "ticket", sub("forget", json!([{"name": "id", "type": 4, "value": 2}])), Delivery::Http).await;
    assert!(text_of(&out).contains("removed from the knowledge base"), "{}", text_of(&out));
    wait_documents(&t, "tickets", 0).await;
    ask_until(&t, alice, question, |r| !r.contains("within a day")).await;

    // A resolved ticket whose thread is deleted in Discord leaves the knowledge base.
    let (thread, message) = answered_ticket(&t, bob, sam, 3, question, &answer).await;
    click(&t, thread, sam, message, "tickets:resolve:3").await;
    wait_documents(&t, "tickets", 1).await;
    // A reopened ticket is not resolved: its answer leaves until it is resolved again.
    click(&t, thread, bob, message, "tickets:reopen:3").await;
    wait_documents(&t, "tickets", 0).await;
    click(&t, thread, sam, message, "tickets:resolve:3").await;
    wait_documents(&t, "tickets", 1).await;
    t.fake.delete_channel_in_ui(thread).unwrap();
    wait_documents(&t, "tickets", 0).await;

    // Turning the setting off removes every resolved ticket.
    let (thread, message) = answered_ticket(&t, bob, sam, 4, question, &answer).await;
    click(&t, thread, sam, message, "tickets:resolve:4").await;
    wait_documents(&t, "tickets", 1).await;
    set(&t, "tickets.learn_from_resolved", "false").await;
    wait_documents(&t, "tickets", 0).await;
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ticket_knowledge WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 0);
    t.stop().await;
}

/// A 👎 reaction on an answer offers staff the correction in the log channel (once per answer);
/// staff's answer in the modal becomes an FAQ entry for the question, and the next identical
/// question — whose answer was cached — gets the corrected answer. Staff voting down with the
/// button are offered it at once; members are not.
#[tokio::test]
async fn a_thumbs_down_offers_staff_a_correction_that_changes_the_next_answer() {
    let (t, sam) = spawn().await;
    let bob = t.member("bob");
    let carol = t.fake.add_member(t.guild.id, None, "carol", vec![]).unwrap();
    let general = t.channel("general");
    let log = t.channel("mod-log");
    let question = "How do I get a refund?";
    assert!(ask_in_channel(&t, bob, question).await.contains("14 days"));
    let cached = t.command(carol, "ask", json!([opt_str("question", question)]), Delivery::Http).await;
    assert!(text_of(&cached).contains("14 days"), "{}", text_of(&cached));
    let answer = t
        .fake
        .messages(general)
        .into_iter()
        .find(|m| m["content"].as_str().is_some_and(|c| c.contains("14 days")))
        .expect("the answer");
    t.fake.add_reaction(t.guild.id, general, id_of(&answer), bob, "👎").await.unwrap();
    let offer = wait_message(&t, log, "👎 on Beacon's answer to “How do I get a refund?”").await;
    let correct = buttons(&offer).into_iter().find(|b| b.starts_with("support:correct:")).expect("Correct this");

    // The same answer voted down again (the button, by a member): no second notice, no button.
    let down = buttons(&answer).into_iter().find(|b| b.starts_with("support:fb:down:")).unwrap();
    let out = click(&t, general, carol, id_of(&answer), &down).await;
    assert!(!buttons(&out.data).iter().any(|b| b.starts_with("support:correct:")), "{out:?}");
    let out = click(&t, general, sam, id_of(&answer), &down).await;
    assert!(buttons(&out.data).contains(&correct), "staff are offered it at once: {out:?}");
    let notices = t.fake.messages(log).iter().filter(|m| m["content"].as_str().unwrap_or("").contains("👎 on")).count();
    assert_eq!(notices, 1);

    let out = click(&t, log, bob, id_of(&offer), &correct).await;
    assert!(text_of(&out).contains("Only staff"), "{out:?}");
    let out = click(&t, log, sam, id_of(&offer), &correct).await;
    assert_eq!(out.kind, 9, "a modal: {out:?}");
    let right = "Refunds are handled by our billing team: write to them within 30 days of purchase.";
    let h = t.fake.submit_modal(t.guild.id, log, sam, &correct, &[("answer", right)], Delivery::Gateway).await;
    let saved = t.fake.wait_response(&h.unwrap(), WAIT).await.unwrap();
    assert!(text_of(&saved).contains("Saved as FAQ entry #1"), "{saved:?}");
    wait_documents(&t, "faq", 1).await;
    // The next identical question (its answer was cached) gets the correction.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = t.command(carol, "ask", json!([opt_str("question", question)]), Delivery::Http).await;
        if text_of(&reply).contains("billing team") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the correction never answered: {}", text_of(&reply));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.stop().await;
}

/// `/support-stats` ranks the questions Beacon abstained on or that got 👎, near-identical ones
/// together, PII-redacted; gaps past `support.gaps_retention` are gone.
#[tokio::test]
async fn support_stats_rank_abstentions_and_thumbs_down() {
    let (t, _sam) = spawn().await;
    let bob = t.member("bob");
    let ask = |q: &str| json!([opt_str("question", q)]);
    // An old gap, past the retention period, deleted as new ones are recorded.
    sqlx::query(
        "INSERT INTO support_gaps (guild_id, answer_id, kind, normalized, question, created_at) \
         VALUES ($1, 0, 'abstained', 'ancient question', 'Ancient question', 0)",
    )
    .bind(t.guild.id as i64)
    .execute(t.app().store.pool())
    .await
    .unwrap();
    for q in [
        "What is the weather on Mars tomorrow?",
        "what is the weather on mars tomorrow",
        "WHAT is the weather on Mars, tomorrow!",
    ] {
        let out = t.command(bob, "ask", ask(q), Delivery::Http).await;
        assert!(!buttons(&out.data).iter().any(|b| b.starts_with("support:fb:")), "an abstention: {}", text_of(&out));
    }
    let out = t.command(bob, "ask", ask("Which dinosaur was the largest? From jane@example.com"), Delivery::Http).await;
    assert!(!buttons(&out.data).iter().any(|b| b.starts_with("support:fb:")), "an abstention: {}", text_of(&out));
    let out = t.command(bob, "ask", ask("How do I get a refund?"), Delivery::Http).await;
    let down = buttons(&out.data).into_iter().find(|b| b.starts_with("support:fb:down:")).unwrap();
    let general = t.channel("general");
    let message = t
        .fake
        .messages(general)
        .into_iter()
        .find(|m| buttons(m).contains(&down))
        .map(|m| id_of(&m))
        .expect("the answer");
    click(&t, general, bob, message, &down).await;
    click(&t, general, bob, message, &down).await;

    let out = t.command(t.owner(), "support-stats", json!([]), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("Gaps: questions abstained on or 👎 (3)"), "{text}");
    let mars = text.find("3× “WHAT is the weather on Mars, tomorrow!” (abstained 3 · 👎 0)").expect(&text);
    let refund = text.find("1× “How do I get a refund?” (abstained 0 · 👎 1)").expect(&text);
    let gold = text.find("1× “Which dinosaur was the largest? From [email]” (abstained 1 · 👎 0)").expect(&text);
    assert!(mars < refund && mars < gold, "ranked by how often they come: {text}");
    assert!(!text.contains("jane@") && !text.contains("Ancient"), "{text}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT question FROM support_gaps WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_all(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert!(stored.iter().all(|q| !q.contains("jane@")), "{stored:?}");
    t.stop().await;
}

/// Erasing a member reaches the search index at once: the knowledge their resolved ticket added
/// stops answering as soon as `/privacy delete` erased it, not at the next scheduled sync.
#[tokio::test]
async fn erasing_the_member_removes_their_tickets_knowledge_from_the_index_at_once() {
    let (t, sam) = spawn().await;
    let (bob, alice) = (t.member("bob"), t.member("alice-admin"));
    let question = "Can I transfer my licence to my colleague?";
    let answer = "Yes: the licence owner sends a transfer request from the licence page and it moves within an hour.";
    set(&t, "tickets.learn_from_resolved", "true").await;
    let (thread, message) = answered_ticket(&t, bob, sam, 1, question, answer).await;
    click(&t, thread, sam, message, "tickets:resolve:1").await;
    wait_documents(&t, "tickets", 1).await;
    ask_until(&t, alice, question, |r| r.contains("within an hour")).await;

    let receipt = t.app().erase_member(t.guild.id, bob).await.unwrap();
    assert!(receipt.iter().any(|l| l.part == "ticket_knowledge" && l.changed > 0), "{receipt:?}");
    wait_documents(&t, "tickets", 0).await;
    ask_until(&t, alice, question, |r| !r.contains("within an hour")).await;
    t.stop().await;
}
