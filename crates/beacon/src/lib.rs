//! The `beacon` binary's library half: process assembly shared by the subcommands and by the
//! end-to-end tests (which start the same app in-process, against the testkit's fake Discord).

pub mod backends;
pub mod backup_cli;
pub mod health_cli;
pub mod kb_cli;
pub mod llm_cli;
pub mod run;
pub mod telemetry;
