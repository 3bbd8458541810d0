//! Shared helpers for the testkit's integration tests.
#![allow(dead_code)]

use beacon_testkit::{FakeDiscord, FakeOptions, GuildInfo, GuildSpec, MemberSpec, RoleSpec};
use std::path::PathBuf;

/// Discord's OpenAPI description shipped next to the workspace.
pub fn spec_path() -> PathBuf {
    std::env::var_os("BEACON_DISCORD_OPENAPI").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/discord-api-spec/openapi.json")
    })
}

/// twilight's TLS stack needs a process-wide crypto provider even for plain http/ws.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn start(opts: FakeOptions) -> FakeDiscord {
    install_crypto();
    FakeDiscord::start(FakeOptions { openapi_path: Some(spec_path()), ..opts }).await.expect("fake discord starts")
}

pub fn guild(fake: &FakeDiscord) -> GuildInfo {
    fake.create_guild(GuildSpec {
        name: "Test Guild".into(),
        owner_id: None,
        text_channels: vec!["general".into(), "support".into()],
        roles: vec![RoleSpec { name: "member".into(), permissions: 0 }],
        members: vec![
            MemberSpec { user_id: None, username: "owner".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "alice".into(), roles: vec!["member".into()] },
        ],
    })
}

/// The member named `name`.
pub fn member(g: &GuildInfo, name: &str) -> u64 {
    g.members.iter().find(|m| m.username == name).expect("member exists").user_id
}
