//! The privacy contract: what each module holds about a member, and how it exports and erases it.
//!
//! Every module declares, for **each** guild table of its schemas, what that table holds about
//! members ([`Module::personal_data`](crate::Module::personal_data)): either nothing (and why), or
//! member rows — the `SELECT` that finds one member's rows (`$1` the guild id, `$2` the member's
//! id), what of them an export withholds and why, the statements that erase or anonymise them,
//! and what an erasure keeps and why. [`AppBuilder::build`](crate::AppBuilder::build) refuses a
//! module whose guild table is not declared, so no member data escapes an export or an erasure.
//!
//! [`Module::export_member`](crate::Module::export_member) and
//! [`Module::erase_member`](crate::Module::erase_member) run those declarations by default; a
//! module that keeps member data elsewhere (files, the cache) adds it there.
//!
//! ```
//! use beacon_framework::privacy::PersonalData;
//!
//! let notes = PersonalData::member(
//!     "notes",
//!     "memos the member wrote",
//!     "SELECT id, body, created_at FROM notes WHERE guild_id = $1 AND author_id = $2",
//! )
//! .erase(&["DELETE FROM notes WHERE guild_id = $1 AND author_id = $2"]);
//! let counters = PersonalData::nothing("notes_counters", "one counter per server");
//! # let _ = (notes, counters);
//! ```

use std::sync::Arc;

use beacon_store::GuildStore;
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::error::HandlerError;

/// What one guild table holds about members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalData {
    /// The table (one of the module's schemas' guild tables).
    pub table: &'static str,
    /// What it holds.
    pub holds: Holds,
}

/// Whether a table holds member data, and how it is exported and erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// No row is about a member; why.
    Nothing(&'static str),
    /// Rows about members.
    Members(MemberRows),
}

/// How a table's rows about one member are found, exported and erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRows {
    /// What a row is, for the export's manifest.
    pub about: &'static str,
    /// Finds the member's rows: `$1` the guild id, `$2` the member's id; only the columns an
    /// export shows.
    pub select: &'static str,
    /// What the export leaves out of these rows, and why.
    pub withheld: Option<&'static str>,
    /// Erases or anonymises the member's rows (`$1`, `$2` as in `select`), in one transaction.
    pub erase: &'static [&'static str],
    /// What an erasure keeps, and why.
    pub kept: Option<&'static str>,
}

impl PersonalData {
    /// A table that holds nothing about members, and why.
    pub fn nothing(table: &'static str, why: &'static str) -> PersonalData {
        PersonalData { table, holds: Holds::Nothing(why) }
    }

    /// A table with rows about members: what a row is and the `SELECT` of one member's rows.
    pub fn member(table: &'static str, about: &'static str, select: &'static str) -> PersonalData {
        PersonalData {
            table,
            holds: Holds::Members(MemberRows { about, select, withheld: None, erase: &[], kept: None }),
        }
    }

    /// The statements that erase or anonymise the member's rows.
    pub fn erase(mut self, statements: &'static [&'static str]) -> PersonalData {
        if let Holds::Members(rows) = &mut self.holds {
            rows.erase = statements;
        }
        self
    }

    /// What an erasure keeps, and why.
    pub fn keeps(mut self, why: &'static str) -> PersonalData {
        if let Holds::Members(rows) = &mut self.holds {
            rows.kept = Some(why);
        }
        self
    }

    /// What an export leaves out, and why.
    pub fn withholds(mut self, why: &'static str) -> PersonalData {
        if let Holds::Members(rows) = &mut self.holds {
            rows.withheld = Some(why);
        }
        self
    }
}

/// One part of a member's export: a table's rows (or a module's other records) about them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExportPart {
    /// The module that holds it (filled in by the app).
    pub module: String,
    /// The table, or another name for records outside the database (`transcripts`).
    pub part: String,
    /// What each record is.
    pub about: String,
    /// The records.
    pub records: Vec<Value>,
    /// What was left out, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
}

impl ExportPart {
    /// A part of `module`'s export (the app fills in the module).
    pub fn new(part: impl Into<String>, about: impl Into<String>, records: Vec<Value>) -> ExportPart {
        ExportPart { module: String::new(), part: part.into(), about: about.into(), records, withheld: None }
    }
}

/// What an erasure did with one part of a member's data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErasureLine {
    /// The module (filled in by the app).
    pub module: String,
    /// The table, or another name for records outside the database.
    pub part: String,
    /// Records erased or anonymised.
    pub changed: u64,
    /// What was kept, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

impl ErasureLine {
    /// A line of `module`'s receipt (the app fills in the module).
    pub fn new(part: impl Into<String>, changed: u64, kept: Option<String>) -> ErasureLine {
        ErasureLine { module: String::new(), part: part.into(), changed, kept }
    }
}

/// Everything the modules hold about one member in one guild.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemberExport {
    /// The guild (as a string: snowflakes exceed JSON's safe integers).
    pub guild_id: String,
    /// The member.
    pub user_id: String,
    /// Non-empty parts, each with what it is and what was withheld.
    pub parts: Vec<ExportPart>,
}

/// Exports the member's rows of every declared table (the default of
/// [`Module::export_member`](crate::Module::export_member)). Tables where the member has no row are
/// left out.
pub async fn export_declared(
    declared: &[PersonalData],
    guild: &GuildStore,
    user_id: u64,
) -> Result<Vec<ExportPart>, HandlerError> {
    let mut parts = Vec::new();
    for data in declared {
        let Holds::Members(rows) = &data.holds else { continue };
        let records = guild.member_rows(rows.select, user_id).await?;
        if records.is_empty() {
            continue;
        }
        let mut part = ExportPart::new(data.table, rows.about, records);
        part.withheld = rows.withheld.map(str::to_owned);
        parts.push(part);
    }
    Ok(parts)
}

/// Runs every declared erasure for the member (the default of
/// [`Module::erase_member`](crate::Module::erase_member)); a table that keeps something says so
/// even when nothing was changed.
pub async fn erase_declared(
    declared: &[PersonalData],
    guild: &GuildStore,
    user_id: u64,
) -> Result<Vec<ErasureLine>, HandlerError> {
    let mut lines = Vec::new();
    for data in declared {
        let Holds::Members(rows) = &data.holds else { continue };
        let changed: u64 = guild.erase_member_rows(rows.erase, user_id).await?.iter().sum();
        if changed > 0 || rows.kept.is_some() {
            lines.push(ErasureLine::new(data.table, changed, rows.kept.map(str::to_owned)));
        }
    }
    Ok(lines)
}

/// The name under which the framework's own tables appear in exports and receipts.
pub const CORE: &str = "core";

/// What the framework's own tables (the core schema and the job table) hold about members.
pub fn core_personal_data() -> Vec<PersonalData> {
    vec![
        PersonalData::member(
            "guilds",
            "the server, when the member owns it",
            "SELECT guild_id, name, owner_id FROM guilds WHERE guild_id = $1 AND owner_id = $2",
        )
        .keeps("the owner of a server is who Discord says owns it; it is read again from Discord"),
        PersonalData::member(
            "authorized_users",
            "delegated access (/access) the member holds or granted",
            "SELECT user_id, granted_by, granted_at FROM authorized_users \
             WHERE guild_id = $1 AND (user_id = $2 OR granted_by = $2)",
        )
        .erase(&[
            "DELETE FROM authorized_users WHERE guild_id = $1 AND user_id = $2",
            "UPDATE authorized_users SET granted_by = NULL WHERE guild_id = $1 AND granted_by = $2",
        ]),
        PersonalData::member(
            "guild_settings",
            "settings the member changed last",
            "SELECT key, updated_at FROM guild_settings WHERE guild_id = $1 AND updated_by = $2",
        )
        .withholds("the values are the server's configuration, not about the member")
        .erase(&["UPDATE guild_settings SET updated_by = 0 WHERE guild_id = $1 AND updated_by = $2"])
        .keeps("the server's settings stay; who changed them last is removed"),
        PersonalData::member(
            "setting_audit",
            "setting changes the member made (the audit trail of /config)",
            "SELECT id, key, at FROM setting_audit WHERE guild_id = $1 AND actor_id = $2",
        )
        .withholds("old and new values are the server's configuration, not about the member")
        .erase(&["UPDATE setting_audit SET actor_id = 0 WHERE guild_id = $1 AND actor_id = $2"])
        .keeps("the server's audit trail keeps each change (for its retention) without who made it"),
        PersonalData::member(
            "guild_modules",
            "modules the member switched on or off last",
            "SELECT module, enabled, updated_at FROM guild_modules WHERE guild_id = $1 AND updated_by = $2",
        )
        .erase(&["UPDATE guild_modules SET updated_by = 0 WHERE guild_id = $1 AND updated_by = $2"])
        .keeps("the server's module switches stay; who flipped them is removed"),
        PersonalData::nothing("guild_changes", "change notices carry only the server's id and a time"),
        PersonalData::nothing("command_usage", "which command ran, how it ended and when; not who ran it, no text"),
        PersonalData::nothing(
            "handler_errors",
            "a failed handler's module, reference and error message with personal data redacted; not who ran it",
        ),
        PersonalData::nothing(
            "beacon_jobs",
            "a job's payload belongs to the module of its kind, which exports and erases its own jobs",
        ),
    ]
}

impl App {
    /// Everything every module (and the framework) holds about `user_id` in `guild_id`.
    pub async fn export_member(self: &Arc<Self>, guild_id: u64, user_id: u64) -> Result<MemberExport, HandlerError> {
        let guild = self.guild(guild_id);
        let mut parts = Vec::new();
        for mut part in export_declared(&core_personal_data(), &guild, user_id).await? {
            CORE.clone_into(&mut part.module);
            parts.push(part);
        }
        for module in &self.modules {
            for mut part in module.export_member(self, &guild, user_id).await? {
                module.name().clone_into(&mut part.module);
                parts.push(part);
            }
        }
        Ok(MemberExport { guild_id: guild_id.to_string(), user_id: user_id.to_string(), parts })
    }

    /// Erases or anonymises what every module (and the framework) holds about `user_id` in
    /// `guild_id`, as each declares; the receipt says what was changed and what was kept and why.
    pub async fn erase_member(self: &Arc<Self>, guild_id: u64, user_id: u64) -> Result<Vec<ErasureLine>, HandlerError> {
        let guild = self.guild(guild_id);
        let mut receipt = Vec::new();
        for module in &self.modules {
            for mut line in module.erase_member(self, &guild, user_id).await? {
                module.name().clone_into(&mut line.module);
                receipt.push(line);
            }
        }
        for mut line in erase_declared(&core_personal_data(), &guild, user_id).await? {
            CORE.clone_into(&mut line.module);
            receipt.push(line);
        }
        // The name the dashboard cached for a few minutes goes too.
        if let Err(e) = self.cache.delete(&crate::api::name_key(guild_id, user_id)).await {
            tracing::warn!(error = %e, "the member's cached name was not removed; it expires within minutes");
        }
        Ok(receipt)
    }
}

/// The guild tables of `module`'s schemas that its [`crate::Module::personal_data`] does not
/// declare (the app refuses to build with any).
pub fn undeclared_tables(module: &dyn crate::Module) -> Vec<&'static str> {
    let declared: Vec<&str> = module.personal_data().iter().map(|d| d.table).collect();
    module.schemas().iter().flat_map(|s| s.guild_tables.iter().copied()).filter(|t| !declared.contains(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_store::{Migration, Schema};

    const NOTES: Schema = Schema {
        name: "notes",
        migrations: &[Migration::new(1, "n", "SELECT 1")],
        guild_tables: &["notes", "notes_tags"],
    };

    struct Notes(Vec<PersonalData>);

    #[async_trait::async_trait]
    impl crate::Module for Notes {
        fn name(&self) -> &'static str {
            "notes"
        }
        fn description(&self) -> &'static str {
            "notes"
        }
        fn schemas(&self) -> Vec<Schema> {
            vec![NOTES]
        }
        fn personal_data(&self) -> Vec<PersonalData> {
            self.0.clone()
        }
    }

    #[test]
    fn a_guild_table_without_a_declaration_is_found() {
        let notes = PersonalData::member("notes", "notes", "SELECT 1");
        assert_eq!(undeclared_tables(&Notes(vec![notes.clone()])), vec!["notes_tags"]);
        assert_eq!(undeclared_tables(&Notes(Vec::new())), vec!["notes", "notes_tags"]);
        let tags = PersonalData::nothing("notes_tags", "tags name no member");
        assert!(undeclared_tables(&Notes(vec![notes, tags])).is_empty());
    }

    #[test]
    fn core_declares_every_core_and_job_table() {
        let declared: Vec<&str> = core_personal_data().iter().map(|d| d.table).collect();
        for table in beacon_store::CORE.guild_tables.iter().chain(beacon_jobs::SCHEMA.guild_tables) {
            assert!(declared.contains(table), "core table {table} has no privacy declaration");
        }
    }
}
