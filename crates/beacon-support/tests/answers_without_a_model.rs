//! An offline first start (no embedding model: BM25 only) still answers the obvious questions
//! and still declines the ones the knowledge base cannot answer: retrieval through beacon-kb's
//! real index, then the support module's confidence and extractive span.

use beacon_kb::retriever::IndexedChunk;
use beacon_kb::{ChunkerConfig, FusionConfig, GuildIndex, chunk_markdown};
use beacon_support::confidence::{DEFAULT_THRESHOLD, Mode, confidence};
use beacon_support::extract::best_span;

const DOCS: &[(&str, &str)] = &[
    ("Refunds", "# Refunds\n\nRefunds are issued within 14 days.\n"),
    (
        "Account",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen.\n",
    ),
    ("Shipping", "# Shipping\n\nOrders ship within two business days. Tracking links arrive by e-mail.\n"),
];

fn index() -> GuildIndex {
    let mut chunks = Vec::new();
    for (doc, (title, body)) in DOCS.iter().enumerate() {
        for c in chunk_markdown(body, &ChunkerConfig::default()) {
            chunks.push(IndexedChunk {
                chunk_id: chunks.len() as i64,
                document_id: doc as i64,
                document_key: format!("{}.md", title.to_lowercase()),
                title: (*title).to_owned(),
                heading_path: c.heading_path,
                text: c.text,
                embedding: None,
            });
        }
    }
    GuildIndex::build(chunks).unwrap()
}

#[test]
fn obvious_questions_are_answered_without_a_model() {
    let index = index();
    for question in [
        "How long do refunds take?",
        "How do I get a refund?",
        "How do I get a refund? Mail me at bob@example.com",
        "how can I reset my password",
    ] {
        let hits = index.search(&FusionConfig::default(), question, None, 5).unwrap();
        let best = hits.first().unwrap_or_else(|| panic!("{question}: no passage"));
        assert_eq!(Mode::of(best), Mode::Bm25);
        let c = confidence(question, best);
        assert!(c >= DEFAULT_THRESHOLD, "{question}: confidence {c} on {:?}", best.text);
    }
    let hits = index.search(&FusionConfig::default(), "How long do refunds take?", None, 5).unwrap();
    assert_eq!(hits[0].title, "Refunds");
    assert_eq!(best_span("How long do refunds take?", &hits[0].text).text, "Refunds are issued within 14 days.");
}

#[test]
fn out_of_scope_questions_still_abstain_without_a_model() {
    let index = index();
    for question in [
        "What is the airspeed velocity of an unladen swallow?",
        "Can I bring my dog to the office?",
        "Do you sell gift cards?",
        "Who won the football match yesterday?",
    ] {
        let hits = index.search(&FusionConfig::default(), question, None, 5).unwrap();
        if let Some(best) = hits.first() {
            let c = confidence(question, best);
            assert!(c < DEFAULT_THRESHOLD, "{question}: confidence {c} on {:?}", best.text);
        }
    }
}
