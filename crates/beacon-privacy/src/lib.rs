//! Members' privacy in Discord: `/privacy export` (every module's records about the member, as
//! JSON files with a manifest), `/privacy delete` (after a confirmation, each module erases or
//! anonymises what it declares, and the member gets a receipt), and `/privacy purge-guild` (the
//! owner, after two confirmations, removes the whole server's data as `beacon guild purge` does).
//!
//! What each module holds is its own declaration (`Module::personal_data`, see
//! `beacon_framework::privacy`); this crate only asks the app for it. Shaped like
//! `beacon-tickets`: `flow.rs` builds the files and the receipt, `module.rs` is the Discord
//! adapter.
//!
//! The binary adds it with `.module(beacon_privacy::PrivacyModule)`; it cannot be switched off.

mod flow;
mod module;

pub use flow::{ExportFile, MAX_FILE_BYTES, export_files, receipt_text};
pub use module::PrivacyModule;
