//! CPU time of one forward pass at all-MiniLM-L6-v2's shape (6 layers, 384 wide, 1536 inner) on
//! synthetic weights: `cargo run --release -p beacon-encoder --example forward_cpu -- [TOKENS] [RUNS] [f32|bf16|int8]`.
//! Prints one JSON object; CPU time is user + system from `/proc/self/stat`, so other processes'
//! work on a shared machine does not count.

use beacon_encoder::{Dense, Encoder, EncoderError, Layer, Norm, Positions, Precision};

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    let Some((_, rest)) = stat.rsplit_once(") ") else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), EncoderError> {
    let mut args = std::env::args().skip(1);
    let tokens: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(12);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let precision: Precision = args.next().as_deref().unwrap_or("f32").parse()?;
    let (h, ffn, vocab, positions) = (384, 1536, 30522, 512);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
            })
            .collect()
    };
    let mut layers = Vec::new();
    for _ in 0..6 {
        let mut dense = |i: usize, o: usize| Dense::new(values(i * o), values(o), i, o);
        let (q, k, v, out, up, down) =
            (dense(h, h)?, dense(h, h)?, dense(h, h)?, dense(h, h)?, dense(h, ffn)?, dense(ffn, h)?);
        let norm = || Norm::new(vec![1.0; h], vec![0.0; h], 1e-12);
        layers.push(Layer::new([q, k, v], out, norm(), up, down, norm())?);
    }
    let word = values(vocab * h);
    let pos = values(positions * h);
    let encoder = Encoder::new(
        word,
        pos,
        Positions::Bert { token_type: Some(values(h)) },
        Norm::new(vec![1.0; h], vec![0.0; h], 1e-12),
        layers,
        12,
    )?
    .with_precision(precision)?;
    let ids: Vec<u32> = (0..tokens as u32).map(|i| 101 + i * 37).collect();
    let mut sink = 0.0f32;
    for _ in 0..5 {
        sink += encoder.forward(&ids)?[0];
    }
    let cpu = cpu_seconds();
    for _ in 0..runs {
        sink += encoder.forward(&ids)?[0];
    }
    let per = (cpu_seconds() - cpu) * 1e3 / runs as f64;
    println!(
        "{{\"precision\":\"{precision}\",\"tokens\":{tokens},\"runs\":{runs},\"forward_cpu_ms\":{per:.3},\"checksum\":{sink}}}"
    );
    Ok(())
}
