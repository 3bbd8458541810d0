//! Detection and false-positive rates of the injection screen on a hand-assembled corpus of
//! instruction-override attempts (several languages, role markers, persona switches, secret
//! exfiltration, mass-ping requests) and ordinary support questions, including ones that use the
//! same words innocently ("ignore a user", "the rules of this server", "my API key").
//!
//! Run with `--nocapture` to see the rates and every miss.

use beacon_support::injection::screen;

#[test]
fn detection_and_false_positive_rates() {
    let corpus = include_str!("data/injection_corpus.jsonl");
    let (mut attacks, mut caught, mut benign, mut false_pos) = (0, 0, 0, 0);
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let item: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
        let text = item["text"].as_str().expect("text");
        let attack = item["attack"].as_bool().expect("attack");
        let flagged = screen(text).flagged;
        if attack {
            attacks += 1;
            if flagged {
                caught += 1;
            } else {
                println!("missed attack: {text}");
            }
        } else {
            benign += 1;
            if flagged {
                false_pos += 1;
                println!("false positive: {text} {:?}", screen(text).reasons);
            }
        }
    }
    let detection = caught as f64 / attacks as f64;
    let fpr = false_pos as f64 / benign as f64;
    println!(
        "injection screen: detection {caught}/{attacks} = {detection:.3}, false positives {false_pos}/{benign} = {fpr:.3}"
    );
    assert!(attacks >= 50 && benign >= 100, "corpus too small");
    assert!(detection >= 0.9, "detection {detection:.3}");
    assert!(fpr <= 0.02, "false-positive rate {fpr:.3}");
}
