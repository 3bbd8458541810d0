//! The files of an export (a manifest in each, split to fit Discord's upload limit) and the
//! receipt of an erasure.

use beacon_framework::privacy::{ErasureLine, MemberExport};
use serde_json::{Value, json};

/// The largest file an export sends: under Discord's 10 MiB upload limit for a bot's file,
/// with room for the request's other parts.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// `beacon-data-<member>-<n>-of-<m>.json`.
    pub name: String,
    /// The JSON.
    pub bytes: Vec<u8>,
}

/// One part's records placed in one file.
struct Slice {
    part: usize,
    records: Vec<Value>,
}

/// Builds the files of `exports` (one per guild) for `user_id`, each at most `limit` bytes. Every
/// file carries the whole manifest — each part with what it is, how many records it has, what
/// was withheld and why, and which files hold it — and its own share of the records; a large
/// part continues in the next file. Fails when one record alone does not fit.
pub fn export_files(
    exports: &[MemberExport],
    user_id: u64,
    generated_at: &str,
    limit: usize,
) -> Result<Vec<ExportFile>, String> {
    let parts: Vec<(&str, &beacon_framework::privacy::ExportPart)> =
        exports.iter().flat_map(|e| e.parts.iter().map(move |p| (e.guild_id.as_str(), p))).collect();
    let manifest_for = |files_of: &[Vec<usize>], file: usize, files: usize| {
        json!({
            "user_id": user_id.to_string(),
            "generated_at": generated_at,
            "file": file,
            "files": files,
            "guilds": exports.iter().map(|e| e.guild_id.clone()).collect::<Vec<_>>(),
            "contents": parts.iter().enumerate().map(|(i, (guild, p))| json!({
                "guild_id": guild,
                "module": p.module,
                "part": p.part,
                "about": p.about,
                "records": p.records.len(),
                "withheld": p.withheld,
                "in_files": files_of.get(i).cloned().unwrap_or_default(),
            })).collect::<Vec<_>>(),
        })
    };
    // The manifest's size with every part in (up to) a few files bounds what a file's records
    // may take.
    let bound: Vec<Vec<usize>> = parts.iter().map(|_| vec![999_999, 999_999, 999_999]).collect();
    let overhead = manifest_for(&bound, 999_999, 999_999).to_string().len() + 256;
    let budget = limit.checked_sub(overhead).filter(|b| *b > 0).ok_or("the manifest alone exceeds the limit")?;
    let mut files: Vec<Vec<Slice>> = vec![Vec::new()];
    let mut used = 0;
    for (index, (_, part)) in parts.iter().enumerate() {
        for record in &part.records {
            let size = record.to_string().len() + 1;
            if size + 128 > budget {
                return Err(format!("a record of {} is larger than a file may be", part.part));
            }
            if used + size + 128 > budget && used > 0 {
                files.push(Vec::new());
                used = 0;
            }
            let current = files.last_mut().ok_or("no file")?;
            match current.last_mut() {
                Some(slice) if slice.part == index => slice.records.push(record.clone()),
                _ => {
                    current.push(Slice { part: index, records: vec![record.clone()] });
                    used += 128;
                }
            }
            used += size;
        }
    }
    let count = files.len();
    let mut files_of: Vec<Vec<usize>> = vec![Vec::new(); parts.len()];
    for (n, file) in files.iter().enumerate() {
        for slice in file {
            if let Some(list) = files_of.get_mut(slice.part) {
                list.push(n + 1);
            }
        }
    }
    let mut out = Vec::with_capacity(count);
    for (n, file) in files.into_iter().enumerate() {
        let data: Vec<Value> = file
            .into_iter()
            .filter_map(|slice| {
                let (guild, p) = parts.get(slice.part)?;
                Some(json!({ "guild_id": guild, "module": p.module, "part": p.part, "records": slice.records }))
            })
            .collect();
        let body = json!({ "manifest": manifest_for(&files_of, n + 1, count), "data": data });
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        if bytes.len() > limit {
            return Err(format!("file {} of the export is {} bytes, over the limit", n + 1, bytes.len()));
        }
        out.push(ExportFile { name: format!("beacon-data-{user_id}-{}-of-{count}.json", n + 1), bytes });
    }
    Ok(out)
}

/// The member's receipt of an erasure: what was erased or anonymised, and what was kept and why.
pub fn receipt_text(lines: &[ErasureLine]) -> String {
    let mut text = String::from("**Your data in this server was erased.**\n\nErased or anonymised:\n");
    let changed: Vec<&ErasureLine> = lines.iter().filter(|l| l.changed > 0).collect();
    if changed.is_empty() {
        text.push_str("• nothing was held about you\n");
    }
    for line in changed {
        text.push_str(&format!("• {} — {}: {} record(s)\n", line.module, line.part.replace('_', " "), line.changed));
    }
    let kept: Vec<&ErasureLine> = lines.iter().filter(|l| l.kept.is_some()).collect();
    if !kept.is_empty() {
        text.push_str("\nKept, and why:\n");
        for line in kept {
            text.push_str(&format!(
                "• {} — {}: {}\n",
                line.module,
                line.part.replace('_', " "),
                line.kept.as_deref().unwrap_or_default()
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_framework::privacy::ExportPart;

    fn export(guild: u64, parts: Vec<(&str, usize)>) -> MemberExport {
        MemberExport {
            guild_id: guild.to_string(),
            user_id: "7".into(),
            parts: parts
                .into_iter()
                .map(|(name, n)| {
                    let mut p = ExportPart::new(
                        name,
                        "rows",
                        (0..n).map(|i| json!({ "i": i, "text": "x".repeat(100) })).collect(),
                    );
                    p.module = "m".into();
                    p
                })
                .collect(),
        }
    }

    fn parse(file: &ExportFile) -> Value {
        serde_json::from_slice(&file.bytes).expect("json")
    }

    #[test]
    fn a_small_export_is_one_file_with_its_manifest() {
        let files = export_files(&[export(1, vec![("a", 2), ("b", 1)])], 7, "now", MAX_FILE_BYTES).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "beacon-data-7-1-of-1.json");
        let v = parse(&files[0]);
        assert_eq!(v["manifest"]["contents"][0]["records"], 2);
        assert_eq!(v["manifest"]["contents"][1]["in_files"], json!([1]));
        assert_eq!(v["data"][0]["records"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_large_export_is_split_under_the_limit_and_loses_no_record() {
        let exports = [export(1, vec![("a", 300), ("b", 50)]), export(2, vec![("c", 200)])];
        let limit = 16 * 1024;
        let files = export_files(&exports, 7, "now", limit).unwrap();
        assert!(files.len() > 3, "{} files", files.len());
        let mut seen = std::collections::BTreeMap::<(String, String), usize>::new();
        for (n, f) in files.iter().enumerate() {
            assert!(f.bytes.len() <= limit, "file {n} is {} bytes", f.bytes.len());
            let v = parse(f);
            assert_eq!(v["manifest"]["file"], n + 1);
            assert_eq!(v["manifest"]["files"], files.len());
            for d in v["data"].as_array().unwrap() {
                let key = (d["guild_id"].as_str().unwrap().to_owned(), d["part"].as_str().unwrap().to_owned());
                *seen.entry(key).or_default() += d["records"].as_array().unwrap().len();
            }
        }
        assert_eq!(seen.get(&("1".into(), "a".into())), Some(&300));
        assert_eq!(seen.get(&("1".into(), "b".into())), Some(&50));
        assert_eq!(seen.get(&("2".into(), "c".into())), Some(&200));
        let manifest = &parse(&files[0])["manifest"]["contents"];
        assert!(manifest[0]["in_files"].as_array().unwrap().len() > 1, "part a spans files: {manifest}");
    }

    #[test]
    fn the_receipt_says_what_was_erased_and_what_was_kept() {
        let mut erased = ErasureLine::new("support_answers", 3, None);
        erased.module = "support".into();
        let mut kept = ErasureLine::new("mod_cases", 0, Some("the server's moderation record".into()));
        kept.module = "moderation".into();
        let text = receipt_text(&[erased, kept]);
        assert!(text.contains("support — support answers: 3 record(s)"), "{text}");
        assert!(text.contains("moderation — mod cases: the server's moderation record"), "{text}");
    }
}
