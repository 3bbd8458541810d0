//! Streamed answers against the testkit's fakes: the fake LLM streams (SSE) a long grounded
//! answer slowly; what is offered mid-stream never shows a half citation marker, a ping or a
//! key; a `ChannelAnswer` with a short edit interval posts early, edits the message several
//! times, and delivers the final text split at 2,000 characters — with no 429 and no spec
//! violation recorded by the fake Discord.

use std::sync::Arc;
use std::time::Duration;

use beacon_llm::{CallContext, LlmService, Passage, ProviderConfig, ProviderKind, Reliability, build_provider};
use beacon_support::grounded::Grounded;
use beacon_support::stream::{self, ChannelAnswer, LiveAnswer};
use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply};
use beacon_testkit::{FakeDiscord, FakeOptions, GuildSpec, MemberSpec};
use twilight_model::id::Id;

fn llm(fake: &FakeLlm) -> LlmService {
    let config = ProviderConfig {
        kind: ProviderKind::OpenAiCompatible,
        model: "local-model".to_owned(),
        api_key: None,
        base_url: fake.openai_base_url(),
        embedding_model: None,
    };
    let reliability = Reliability { max_retries: 0, ..Reliability::default() };
    let provider = build_provider(&config, Duration::from_secs(5)).expect("provider");
    LlmService::with_providers(vec![provider], reliability, Duration::from_secs(60))
}

fn passages() -> Vec<Passage> {
    vec![Passage { source: "Refunds".to_owned(), text: "Refunds within 14 days.".to_owned() }]
}

/// About 2,400 characters citing passage 1, with a ping and a key along the way.
fn long_answer() -> String {
    let mut sentences: Vec<String> =
        (1..=40).map(|i| format!("Step {i}: open the billing page and request the refund [1].")).collect();
    sentences[2] = "Tell @everyone that refunds take 14 days [1].".to_owned();
    sentences[5] = "Never paste sk-abcdefghijklmnopqrstuvwxyz0123 anywhere [1].".to_owned();
    sentences.join(" ")
}

/// Records every offer.
#[derive(Default)]
struct Recorder(Vec<String>);

#[beacon_framework::async_trait]
impl LiveAnswer for Recorder {
    async fn offer(&mut self, text: &str) {
        self.0.push(text.to_owned());
    }
}

#[tokio::test]
async fn offers_are_guarded_and_never_show_half_a_marker() {
    let fake = FakeLlm::start().await.expect("fake llm");
    // Small pieces cut markers in half often.
    fake.push(Dialect::OpenAi, FakeReply::text(&long_answer()).paced(400, Duration::ZERO));
    let mut recorder = Recorder::default();
    let answer =
        stream::answer(&llm(&fake), &CallContext::new(1, "support"), "refund?", None, &[], &passages(), &mut recorder)
            .await
            .expect("answer");
    assert!(matches!(answer.outcome, Grounded::Answer { ref citations, .. } if citations == &[1]), "{answer:?}");
    assert!(recorder.0.len() > 100, "offered as it streamed: {}", recorder.0.len());
    for offer in &recorder.0 {
        assert!(offer.ends_with(" …"), "{offer}");
        for (i, _) in offer.match_indices('[') {
            assert!(
                offer[i..].starts_with("[1]") || offer[i..].starts_with("[redacted]"),
                "half a marker shown: {offer}"
            );
        }
        assert!(!offer.contains("@everyone") && !offer.contains("sk-abc"), "{offer}");
    }
}

#[tokio::test]
async fn a_stream_that_breaks_is_an_error_for_the_caller_to_fall_back_on() {
    let fake = FakeLlm::start().await.expect("fake llm");
    fake.push(Dialect::OpenAi, FakeReply::Truncated { text: long_answer() }.paced(50, Duration::ZERO));
    let mut recorder = Recorder::default();
    let result =
        stream::answer(&llm(&fake), &CallContext::new(1, "support"), "refund?", None, &[], &passages(), &mut recorder)
            .await;
    assert!(result.is_err(), "{result:?}");
    assert!(!recorder.0.is_empty(), "the partial answer was offered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_answer_is_edited_at_the_given_interval_then_split() {
    let discord = FakeDiscord::start(FakeOptions::default()).await.expect("fake discord");
    let guild = discord.create_guild(GuildSpec {
        name: "Stream".into(),
        owner_id: None,
        text_channels: vec!["general".into()],
        roles: vec![],
        members: vec![MemberSpec { user_id: None, username: "owner".into(), roles: vec![] }],
    });
    let channel = guild.channels.iter().find(|c| c.name == "general").expect("channel").id;
    let http =
        Arc::new(beacon_discord::rest::client(Some(&discord.bot_token()), &discord.base_url()).expect("rest client"));
    let fake = FakeLlm::start().await.expect("fake llm");
    fake.push(Dialect::OpenAi, FakeReply::text(&long_answer()).paced(40, Duration::from_millis(30)));

    // The question this answers (its id is only the nonce of the parts posted).
    let question = Id::new(1_000_000_000_000_001);
    let mut live = ChannelAnswer::new(http, channel, question, None, Duration::from_millis(250));
    let answer =
        stream::answer(&llm(&fake), &CallContext::new(1, "support"), "refund?", None, &[], &passages(), &mut live)
            .await
            .expect("answer");
    assert!(live.is_posted(), "posted before the stream ended");
    let Grounded::Answer { text, .. } = answer.outcome else { panic!("{:?}", answer.outcome) };
    let text = beacon_support::guard::output(&text, 4000).text;
    live.deliver(&text, &[]).await.expect("delivered");

    let parts = beacon_discord::split::split_message(&text, 2000);
    assert_eq!(parts.len(), 2);
    let messages: Vec<String> =
        discord.messages(channel).iter().map(|m| m["content"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(messages, parts);
    let requests = discord.requests();
    let edits = requests.iter().filter(|r| r.method == "PATCH").count();
    assert!(edits >= 3, "edited while streaming, then finally: {requests:#?}");
    assert!(requests.iter().all(|r| r.status != 429), "{requests:#?}");
    discord.assert_no_violations();
}
