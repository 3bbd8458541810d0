//! Reminders: `/remind in|at|every|list|cancel|timezone`.
//!
//! A reminder goes to the channel where it was set (when the member may post there) or by DM,
//! in the member's own time zone (IANA names, DST-correct: `schedule.rs`). Each pending
//! reminder is one durable job (`reminders.deliver`, deduplicated by the reminder's id), so any
//! worker delivers it, after restarts too. Delivery is at least once — the job's lease is the
//! claim, taken over by another worker when the one holding it dies — and the post is idempotent
//! with Discord's own mechanism (a nonce per run with `enforce_nonce`), so each run shows once. A
//! recurring reminder's runs missed while Beacon was down are skipped, not replayed. Reminder
//! text is the member's own: it pings nobody. Limits: 25 pending per member, one year ahead.
//! Shaped like `beacon-tickets`: `model.rs` (`Repo::new(guild)`), `schedule.rs`, `module.rs`.

mod model;
mod module;
pub mod schedule;

pub use module::RemindersModule;

/// The job kind that delivers a reminder.
pub const JOB_DELIVER: &str = "reminders.deliver";
/// Pending reminders a member may have in a server.
pub const MAX_PENDING: i64 = 25;
