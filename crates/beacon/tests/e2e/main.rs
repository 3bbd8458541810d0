//! End-to-end tests: the real Beacon app (in-process, or the real binary) against the testkit's
//! fake Discord, which validates every REST request against Discord's OpenAPI description when
//! `BEACON_DISCORD_OPENAPI` is set.

mod harness;

mod agent;
mod ask_providers;
mod backends;
mod backup;
mod binary;
mod commands;
mod dashboard;
mod faq;
mod http_interactions;
mod kb_sources;
mod learning;
mod moderation;
mod modules;
mod observability;
mod privacy;
mod purge;
mod reminders;
mod retention;
mod scale;
mod settings;
mod status_llm;
mod support_answers;
mod support_llm;
mod support_streaming;
mod tickets;
mod transcripts_s3;
mod web_api;
