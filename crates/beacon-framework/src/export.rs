//! `/export`: one command owned by the framework; each module declares the CSV exports it has
//! ([`crate::Module::exports`]) and they become its subcommands, so an export never disappears
//! with another module and a new module adds its own without touching the core.

use std::sync::Arc;

use async_trait::async_trait;
use beacon_store::GuildStore;
use twilight_model::http::attachment::Attachment;

use crate::access::Access;
use crate::app::App;
use crate::command::{CommandSpec, OptionSpec};
use crate::error::{HandlerError, HandlerResult};
use crate::module::{CommandCtx, Module};
use crate::reply::Reply;

/// A day range, `from` and `to` both included (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    /// Start of the first day, unix ms.
    pub from_ms: i64,
    /// End of the last day (start of the day after), unix ms.
    pub to_ms: i64,
    /// The first day as the member wrote it (`YYYY-MM-DD`).
    pub from: String,
    /// The last day as the member wrote it.
    pub to: String,
}

impl DayRange {
    /// Parses two `YYYY-MM-DD` days; the message names the bad one.
    pub fn parse(from: &str, to: &str) -> Result<DayRange, HandlerError> {
        let from_ms = day_start_ms(from)?;
        let to_ms = day_start_ms(to)? + 86_400_000;
        if to_ms <= from_ms {
            return Err(HandlerError::user("`to` must not be before `from`."));
        }
        Ok(DayRange { from_ms, to_ms, from: from.trim().to_owned(), to: to.trim().to_owned() })
    }
}

fn day_start_ms(day: &str) -> Result<i64, HandlerError> {
    let bad = || HandlerError::user(format!("`{day}` is not a date; write it as YYYY-MM-DD, e.g. 2024-01-31."));
    let date: jiff::civil::Date = day.trim().parse().map_err(|_| bad())?;
    if date.year() < 1970 {
        return Err(bad());
    }
    let ts = date.to_zoned_datetime(jiff::tz::TimeZone::UTC).map_err(|_| bad())?.timestamp();
    Ok(ts.as_millisecond())
}

/// A file an export produced.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// File name, e.g. `tickets-2024-01-01-2024-01-31.csv`.
    pub name: String,
    /// Its content.
    pub bytes: Vec<u8>,
    /// One line for the member, e.g. `12 ticket(s) opened from … to …`.
    pub summary: String,
}

/// Produces one export for one guild.
#[async_trait]
pub trait Exporter: Send + Sync {
    /// The export of `guild` (over `range` when the export declares one).
    async fn export(
        &self,
        app: &Arc<App>,
        guild: &GuildStore,
        range: Option<&DayRange>,
    ) -> Result<ExportFile, HandlerError>;
}

/// A module's export: `/export {kind}`.
#[derive(Clone)]
pub struct ExportSpec {
    /// The subcommand, e.g. `tickets`.
    pub kind: &'static str,
    /// Shown in Discord's command picker.
    pub description: &'static str,
    /// Whether it takes `from` and `to` days.
    pub range: bool,
    /// Who may run it (at least staff: the command itself is for staff).
    pub access: Access,
    /// What produces the file.
    pub exporter: Arc<dyn Exporter>,
}

impl ExportSpec {
    /// A staff export of `kind`.
    pub fn new(kind: &'static str, description: &'static str, exporter: Arc<dyn Exporter>) -> ExportSpec {
        ExportSpec { kind, description, range: false, access: Access::Staff, exporter }
    }

    /// The export takes a day range (`from`, `to`).
    pub fn with_range(mut self) -> ExportSpec {
        self.range = true;
        self
    }
}

/// The `/export` command, with one subcommand per declared export (added by the app builder
/// when any module declares one).
pub(crate) struct ExportModule {
    /// `(owning module, spec)`.
    pub(crate) exports: Vec<(&'static str, ExportSpec)>,
}

#[async_trait]
impl Module for ExportModule {
    fn name(&self) -> &'static str {
        "export"
    }

    fn description(&self) -> &'static str {
        "CSV exports of every module"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let mut command = CommandSpec::new("export", "Export data as CSV (staff)", Access::Staff);
        for (_, spec) in &self.exports {
            let options = if spec.range {
                vec![
                    OptionSpec::string("from", "First day, e.g. 2024-01-01").required(),
                    OptionSpec::string("to", "Last day, included, e.g. 2024-01-31").required(),
                ]
            } else {
                Vec::new()
            };
            command = command.option(OptionSpec::subcommand(spec.kind, spec.description, options));
        }
        vec![command]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let kind = ctx.options.subcommand().unwrap_or_default();
        let Some((module, spec)) = self.exports.iter().find(|(_, s)| s.kind == kind) else {
            return Err(HandlerError::user(format!("There is no `{kind}` export here.")));
        };
        ctx.require(spec.access)?;
        if let Some(owner) = ctx.app.module_named(module)
            && !ctx.app.module_enabled(&ctx.guild, owner.as_ref()).await?
        {
            return Err(HandlerError::user(format!("The {module} module is off in this server.")));
        }
        let range = if spec.range {
            Some(DayRange::parse(
                ctx.options.str("from").unwrap_or_default(),
                ctx.options.str("to").unwrap_or_default(),
            )?)
        } else {
            None
        };
        // Attachments travel as multipart only in REST edits, so answer through a defer.
        ctx.responder.defer()?;
        let file = spec.exporter.export(&ctx.app, &ctx.guild, range.as_ref()).await?;
        let attachment = Attachment::from_bytes(file.name, file.bytes, 1);
        ctx.reply(Reply::text(file.summary).with_attachment(attachment).ephemeral()).await
    }
}

/// Guards a CSV cell against spreadsheet formula injection: a cell starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return (OWASP's list) gets a leading `'`, and so does one that already
/// starts with `'`, so [`restore_cell`] gives back exactly what was written. Every module's
/// export uses this one guard.
pub fn defuse_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) { format!("'{text}") } else { text.to_owned() }
}

/// The text [`defuse_cell`] was given, for a cell read back from a file Beacon wrote.
pub fn restore_cell(text: &str) -> &str {
    text.strip_prefix('\'').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges() {
        let r = DayRange::parse("2024-01-01", "2024-01-31").expect("range");
        assert_eq!(r.from_ms, 1_704_067_200_000);
        assert_eq!(r.to_ms, 1_704_067_200_000 + 31 * 86_400_000);
        assert!(DayRange::parse("2024-02-31", "2024-03-01").is_err(), "no rollover into March");
        assert!(DayRange::parse("2024-03-02", "2024-03-01").is_err());
        assert!(DayRange::parse("yesterday", "2024-03-01").is_err());
        assert!(DayRange::parse("1969-12-31", "2024-03-01").is_err());
        assert!(DayRange::parse("2024-03-01", "2024-03-01").is_ok(), "one day");
    }

    #[test]
    fn cells_that_look_like_formulas_are_defused_and_restored() {
        for text in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx", "'quoted", "plain", ""] {
            let cell = defuse_cell(text);
            assert_eq!(restore_cell(&cell), text);
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?}");
        }
        assert_eq!(defuse_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(defuse_cell("plain"), "plain");
    }
}
