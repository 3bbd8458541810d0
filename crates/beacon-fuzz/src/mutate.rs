//! The mutator: stacked byte edits (flips, interesting values, the target's tokens, cuts,
//! copies, splices with another corpus input, long repeats that push sizes towards limits) and,
//! for JSON targets, edits of the parsed tree (a node replaced, removed, duplicated, retyped,
//! nested deeper) that keep the input JSON so the reader's own checks are reached.

use serde_json::{Map, Value};

use crate::Target;

const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1e309",
    b"NaN",
    b"null",
    b"true",
    b"\"\"",
    b"[]",
    b"{}",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\n",
    b"\t",
    b"\xe2\x80\xae",
    b"\xf0\x9f\x98\x80",
    b"%00",
    b"%ZZ",
];

/// A mutated copy of `base` (`other` is another corpus input to splice with).
pub fn mutate(rng: &mut fastrand::Rng, base: &[u8], other: &[u8], target: &Target) -> Vec<u8> {
    if target.json
        && rng.bool()
        && let Ok(mut v) = serde_json::from_slice::<Value>(base)
    {
        let donor = serde_json::from_slice::<Value>(other).ok();
        for _ in 0..rng.usize(1..=4) {
            mutate_json(rng, &mut v, donor.as_ref(), 0);
        }
        if let Ok(out) = serde_json::to_vec(&v) {
            let mut out = out;
            if rng.u8(..) < 32 {
                bytes(rng, &mut out, other, target);
            }
            out.truncate(target.max_len);
            return out;
        }
    }
    let mut out = base.to_vec();
    for _ in 0..rng.usize(1..=8) {
        bytes(rng, &mut out, other, target);
    }
    out.truncate(target.max_len);
    out
}

fn token<'a>(rng: &mut fastrand::Rng, target: &'a Target) -> &'a [u8] {
    if !target.dictionary.is_empty() && rng.bool() {
        target.dictionary[rng.usize(..target.dictionary.len())]
    } else {
        INTERESTING[rng.usize(..INTERESTING.len())]
    }
}

/// One byte-level edit.
fn bytes(rng: &mut fastrand::Rng, out: &mut Vec<u8>, other: &[u8], target: &Target) {
    let len = out.len();
    let at = |rng: &mut fastrand::Rng| rng.usize(..=len);
    match rng.u8(..10) {
        0 if len > 0 => {
            let i = rng.usize(..len);
            out[i] ^= 1 << rng.u8(..8);
        }
        1 if len > 0 => {
            let i = rng.usize(..len);
            out[i] = rng.u8(..);
        }
        2 | 3 => {
            let i = at(rng);
            let t = token(rng, target);
            out.splice(i..i, t.iter().copied());
        }
        4 if len > 0 => {
            let i = rng.usize(..len);
            let n = rng.usize(1..=(len - i).min(64));
            out.drain(i..i + n);
        }
        5 if len > 0 => {
            // Copy a range elsewhere.
            let i = rng.usize(..len);
            let n = rng.usize(1..=(len - i).min(256));
            let piece = out[i..i + n].to_vec();
            let j = at(rng);
            out.splice(j..j, piece);
        }
        6 if !other.is_empty() => {
            // Splice: our head, the other's tail.
            let i = at(rng);
            let j = rng.usize(..other.len());
            out.truncate(i);
            out.extend_from_slice(&other[j..]);
        }
        7 if len > 0 => {
            // A long repeat, towards the reader's limits.
            let i = rng.usize(..len);
            let n = rng.usize(1..=(len - i).min(16));
            let piece = out[i..i + n].to_vec();
            let times = rng.usize(1..=(target.max_len / (4 * n)).max(1));
            let j = at(rng);
            out.splice(j..j, piece.iter().copied().cycle().take(n * times));
        }
        8 if len > 0 => out.truncate(rng.usize(..len)),
        _ => {
            let i = at(rng);
            let n = rng.usize(1..=8);
            let mut fresh = vec![0u8; n];
            rng.fill(&mut fresh);
            out.splice(i..i, fresh);
        }
    }
}

fn random_value(rng: &mut fastrand::Rng, donor: Option<&Value>) -> Value {
    match rng.u8(..12) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::from(rng.i64(..)),
        3 => Value::from(rng.u64(..)),
        4 => serde_json::Number::from_f64(rng.f64() * 1e12 - 5e11).map_or(Value::Null, Value::Number),
        5 => Value::String(String::new()),
        6 => Value::String("x".repeat(rng.usize(1..=5000))),
        7 => Value::String(
            ["\u{0}", "\u{202e}", "é", "😀", "\\", "\"", "<script>", "@everyone", "\r\n"][rng.usize(..9)].to_owned(),
        ),
        8 => Value::Array(Vec::new()),
        9 => Value::Object(Map::new()),
        _ => donor.map_or(Value::Null, |d| pick(rng, d).clone()),
    }
}

/// A random node of `v`.
fn pick<'a>(rng: &mut fastrand::Rng, v: &'a Value) -> &'a Value {
    let mut node = v;
    loop {
        let next = match node {
            Value::Array(a) if !a.is_empty() && rng.u8(..4) != 0 => &a[rng.usize(..a.len())],
            Value::Object(o) if !o.is_empty() && rng.u8(..4) != 0 => {
                o.values().nth(rng.usize(..o.len())).unwrap_or(node)
            }
            _ => return node,
        };
        node = next;
    }
}

/// One tree edit at a random node.
fn mutate_json(rng: &mut fastrand::Rng, v: &mut Value, donor: Option<&Value>, depth: usize) {
    let descend = depth < 64 && rng.u8(..3) != 0;
    match v {
        Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.usize(..a.len());
            match rng.u8(..8) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let copy = a[i].clone();
                    a.insert(i, copy);
                }
                2 => a.push(random_value(rng, donor)),
                _ => mutate_json(rng, &mut a[i], donor, depth + 1),
            }
        }
        Value::Object(o) if descend && !o.is_empty() => {
            let keys: Vec<String> = o.keys().cloned().collect();
            let key = &keys[rng.usize(..keys.len())];
            match rng.u8(..8) {
                0 => {
                    o.remove(key);
                }
                1 => {
                    let value = random_value(rng, donor);
                    o.insert(format!("{key}_"), value);
                }
                _ => {
                    if let Some(child) = o.get_mut(key) {
                        mutate_json(rng, child, donor, depth + 1);
                    }
                }
            }
        }
        _ => {
            let replacement = match rng.u8(..6) {
                // Nest it deeper (towards the depth limit).
                0 => {
                    let mut inner = std::mem::take(v);
                    for _ in 0..rng.usize(1..=40) {
                        inner = Value::Array(vec![inner]);
                    }
                    inner
                }
                // Keep the value, change its type.
                1 => match &*v {
                    Value::String(s) => {
                        s.parse::<i64>().map_or_else(|_| Value::Array(vec![Value::String(s.clone())]), Value::from)
                    }
                    Value::Number(n) => Value::String(n.to_string()),
                    other => Value::String(other.to_string()),
                },
                _ => random_value(rng, donor),
            };
            *v = replacement;
        }
    }
}
