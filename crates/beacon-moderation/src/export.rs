//! `/export cases from to`: the cases created in a day range, as CSV.

use std::sync::Arc;

use beacon_framework::export::defuse_cell;
use beacon_framework::{App, DayRange, ExportFile, Exporter, HandlerError, async_trait};
use beacon_store::GuildStore;

use crate::model::{Case, Repo};
use crate::text::iso;

/// Column names of the cases export, in order.
pub const COLUMNS: [&str; 16] = [
    "number",
    "type",
    "target_id",
    "moderator_id",
    "reason",
    "duration_seconds",
    "created_at",
    "ends_at",
    "ended_at",
    "end_note",
    "source",
    "dm_status",
    "dm_detail",
    "failed",
    "related_case",
    "audit_entry_id",
];

/// The cases as CSV (RFC 4180 quoting, header first, UTC ISO-8601 times).
pub fn cases_csv(cases: &[Case]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    for c in cases {
        out.write_record([
            c.number.to_string(),
            c.kind.as_str().to_owned(),
            c.target_id.to_string(),
            c.moderator_id.to_string(),
            defuse_cell(&c.reason),
            opt(c.duration_ms.map(|d| d / 1000)),
            iso(c.created_at),
            c.ends_at.map(iso).unwrap_or_default(),
            c.ended_at.map(iso).unwrap_or_default(),
            defuse_cell(c.end_note.as_deref().unwrap_or_default()),
            c.source.as_str().to_owned(),
            c.dm_status.as_str().to_owned(),
            defuse_cell(c.dm_detail.as_deref().unwrap_or_default()),
            defuse_cell(c.failed.as_deref().unwrap_or_default()),
            opt(c.related_case),
            c.audit_entry_id.map(|v| v.to_string()).unwrap_or_default(),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// `/export cases from to`.
pub(crate) struct CaseExport;

#[async_trait]
impl Exporter for CaseExport {
    async fn export(
        &self,
        _app: &Arc<App>,
        guild: &GuildStore,
        range: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError> {
        let range = range.ok_or_else(|| HandlerError::user("Give the days to export: `from` and `to`."))?;
        let cases = Repo::new(guild.clone()).created_between(range.from_ms, range.to_ms).await?;
        Ok(ExportFile {
            name: format!("cases-{}-{}.csv", range.from, range.to),
            bytes: cases_csv(&cases).map_err(HandlerError::internal)?,
            summary: format!("{} case(s) from {} to {}.", cases.len(), range.from, range.to),
        })
    }
}
