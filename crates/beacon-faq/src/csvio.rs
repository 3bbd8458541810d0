//! CSV export and import of a guild's FAQ.
//!
//! Columns: `id,question,answer,tags,pinned,views,updated_at`. Import needs `question` and
//! `answer`; `id`, `tags` (comma-separated) and `pinned` (true/false, yes/no, 1/0) are optional
//! and other columns are ignored. Cells that a spreadsheet would run as a formula are exported
//! with a leading `'` ([`beacon_framework::export::defuse_cell`]), which import removes again.

use std::io::{Read, Write};

use beacon_framework::export::{defuse_cell, restore_cell};
use beacon_store::GuildStore;

use crate::error::FaqError;
use crate::model::{EntryInput, FaqEntry, ImportReport, split_tags};
use crate::repo::FaqRepo;

/// Most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 20_000;

const HEADER: [&str; 7] = ["id", "question", "answer", "tags", "pinned", "views", "updated_at"];

/// One row read from a CSV file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// The entry number to create or replace; `None` matches by question or adds.
    pub id: Option<u64>,
    /// The validated question, answer, tags and pin.
    pub entry: EntryInput,
}

/// Writes entries as CSV with a header row.
pub fn write_csv<W: Write>(writer: W, entries: &[FaqEntry]) -> Result<(), FaqError> {
    let mut out = csv::Writer::from_writer(writer);
    out.write_record(HEADER).map_err(csv_error)?;
    for e in entries {
        out.write_record([
            e.id.to_string(),
            defuse_cell(&e.question),
            defuse_cell(&e.answer),
            defuse_cell(&e.tags.join(", ")),
            e.pinned.to_string(),
            e.views.to_string(),
            e.updated_at.to_string(),
        ])
        .map_err(csv_error)?;
    }
    out.flush()?;
    Ok(())
}

/// The CSV text of these entries.
pub fn export_csv(entries: &[FaqEntry]) -> Result<Vec<u8>, FaqError> {
    let mut buf = Vec::new();
    write_csv(&mut buf, entries)?;
    Ok(buf)
}

fn csv_error(e: csv::Error) -> FaqError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    FaqError::Csv {
        line,
        message: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "the file is not UTF-8 text".into(),
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("expected {expected_len} columns, found {len}")
            }
            _ => e.to_string(),
        },
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" | "n" => Some(false),
        "true" | "yes" | "1" | "y" | "pinned" => Some(true),
        _ => None,
    }
}

/// Reads and validates every row; the first bad row stops the import (nothing is written).
pub fn parse_csv<R: Read>(reader: R) -> Result<Vec<CsvRow>, FaqError> {
    let mut input = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::Headers).from_reader(reader);
    let headers: Vec<String> = input
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(q_col), Some(a_col)) = (column("question"), column("answer")) else {
        return Err(FaqError::Csv {
            line: 1,
            message: "the header must name the columns `question` and `answer` (optional: id, tags, pinned)".into(),
        });
    };
    let id_col = column("id");
    let tags_col = column("tags");
    let pinned_col = column("pinned");
    let mut rows = Vec::new();
    for record in input.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let bad = |message: String| FaqError::Csv { line, message };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() >= MAX_IMPORT_ROWS {
            return Err(bad(format!("an import holds at most {MAX_IMPORT_ROWS} rows")));
        }
        let cell = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("");
        let id = match cell(id_col).trim() {
            "" => None,
            text => Some(
                text.trim_start_matches('#')
                    .parse::<u64>()
                    .ok()
                    .filter(|id| *id > 0 && i64::try_from(*id).is_ok())
                    .ok_or_else(|| bad(format!("`{text}` is not an entry number")))?,
            ),
        };
        let pinned = parse_bool(cell(pinned_col))
            .ok_or_else(|| bad(format!("pinned must be true or false, not `{}`", cell(pinned_col))))?;
        let entry = EntryInput::new(
            restore_cell(cell(Some(q_col))),
            restore_cell(cell(Some(a_col))),
            &split_tags(restore_cell(cell(tags_col))),
            pinned,
        )
        .map_err(|e| bad(e.to_string()))?;
        if let Some(id) = id
            && rows.iter().any(|r: &CsvRow| r.id == Some(id))
        {
            return Err(bad(format!("entry number {id} appears twice")));
        }
        rows.push(CsvRow { id, entry });
    }
    Ok(rows)
}

/// Reads a CSV file and writes its rows into the guild's FAQ, all or nothing.
pub async fn import_csv<R: Read>(
    repo: &FaqRepo,
    guild: &GuildStore,
    reader: R,
    actor: u64,
) -> Result<ImportReport, FaqError> {
    let rows = parse_csv(reader)?;
    let rows: Vec<(Option<u64>, EntryInput)> = rows.into_iter().map(|r| (r.id, r.entry)).collect();
    repo.import(guild, &rows, actor).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: u64, question: &str, answer: &str, tags: Vec<String>, pinned: bool) -> FaqEntry {
        FaqEntry {
            guild_id: 7,
            id,
            question: question.into(),
            answer: answer.into(),
            tags,
            pinned,
            created_by: 1,
            updated_by: 1,
            created_at: 0,
            updated_at: 0,
            views: 3,
            deleted_at: None,
        }
    }

    #[test]
    fn formulas_are_defused_and_restored() {
        let e = entry(1, "=HYPERLINK(\"x\")", "- step one\n- step two", vec![], false);
        let text = String::from_utf8(export_csv(std::slice::from_ref(&e)).unwrap()).unwrap();
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(text.contains("'- step one"), "{text}");
        let rows = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(rows[0].entry.question, e.question);
        assert_eq!(rows[0].entry.answer, e.answer);
    }

    #[test]
    fn hand_written_files_are_accepted() {
        let text = "\u{feff}Question,Answer,Tags,Pinned\n\
                    How to pay?,By card.,\"billing, Cards\",yes\n\
                    ,,,\n\
                    Refunds?,Within 5 days.,,\n";
        let rows = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, None);
        assert_eq!(rows[0].entry.tags, vec!["billing", "cards"]);
        assert!(rows[0].entry.pinned);
        assert!(!rows[1].entry.pinned);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let err = parse_csv("question,answer\nok,fine\nno answer,\n".as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "CSV line 3: The answer is empty.");
        let err = parse_csv("title,body\nx,y\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`question` and `answer`"), "{err}");
        let err = parse_csv("id,question,answer\nx1,q,a\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_csv("id,question,answer\n4,q,a\n4,r,b\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = parse_csv("question,answer,pinned\nq,a,maybe\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("pinned"), "{err}");
    }

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[a-zA-Z0-9 ,;\"'=+@#\\-\\n\\r\\té€漢😀]{{1,{max}}}"))
            .expect("valid regex")
            .prop_map(|s| s.trim().to_owned())
            .prop_filter("non-empty after trimming", |s| !s.is_empty())
    }

    fn tags() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::btree_set("[a-z0-9][a-z0-9-]{0,10}", 0..4).prop_map(|s| s.into_iter().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn export_then_import_is_identity(
            raw in proptest::collection::vec((text(60), text(300), tags(), any::<bool>()), 0..12)
        ) {
            let entries: Vec<FaqEntry> = raw
                .into_iter()
                .enumerate()
                .map(|(i, (q, a, t, p))| entry(i as u64 + 1, &q, &a, t, p))
                .collect();
            let csv = export_csv(&entries).unwrap();
            let rows = parse_csv(csv.as_slice()).unwrap();
            prop_assert_eq!(rows.len(), entries.len());
            for (row, e) in rows.iter().zip(&entries) {
                prop_assert_eq!(row.id, Some(e.id));
                prop_assert_eq!(&row.entry.question, &e.question);
                prop_assert_eq!(&row.entry.answer, &e.answer);
                prop_assert_eq!(&row.entry.tags, &e.tags);
                prop_assert_eq!(row.entry.pinned, e.pinned);
            }
        }
    }
}
