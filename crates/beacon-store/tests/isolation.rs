//! Property: random operations on two guilds never let one guild's reads see the other's data.
//!
//! Each case runs a random sequence of grants, revokes, setting writes/resets, reverts (of either
//! guild's audit entries) and module switches against two fresh guilds, mirrors it in an
//! in-memory model, and checks every read of both guilds against the model after each step.
//! Instantiated for SQLite and (when configured) PostgreSQL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use beacon_store::{Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Op {
    Grant {
        guild: usize,
        user: u64,
    },
    Revoke {
        guild: usize,
        user: u64,
    },
    Set {
        guild: usize,
        key: usize,
        value: Option<i64>,
    },
    /// Revert the `pick`-th audit entry created so far, issued through `guild` (which may not
    /// own it).
    Revert {
        guild: usize,
        pick: usize,
    },
    Module {
        guild: usize,
        module: usize,
        enabled: bool,
    },
}

const KEYS: [&str; 3] = ["a.channel", "b.limit", "c.role"];
const MODULES: [&str; 3] = ["faq", "tickets", "moderation"];

fn op() -> impl Strategy<Value = Op> {
    let guild = 0..2usize;
    prop_oneof![
        (guild.clone(), 1..5u64).prop_map(|(guild, user)| Op::Grant { guild, user }),
        (guild.clone(), 1..5u64).prop_map(|(guild, user)| Op::Revoke { guild, user }),
        (guild.clone(), 0..KEYS.len(), proptest::option::of(-3..3i64)).prop_map(|(guild, key, value)| Op::Set {
            guild,
            key,
            value
        }),
        (guild.clone(), 0..16usize).prop_map(|(guild, pick)| Op::Revert { guild, pick }),
        (guild, 0..MODULES.len(), any::<bool>()).prop_map(|(guild, module, enabled)| Op::Module {
            guild,
            module,
            enabled
        }),
    ]
}

#[derive(Default)]
struct Model {
    users: BTreeSet<u64>,
    settings: BTreeMap<String, Value>,
    modules: BTreeMap<String, bool>,
    audit_ids: Vec<i64>,
}

/// Audit entry: (owning guild index, audit id, key, old value).
type AuditEntry = (usize, i64, String, Option<Value>);

/// Distinct guild ids for every case, so cases can share one database.
static NEXT_GUILD: AtomicU64 = AtomicU64::new(1_000_000);

async fn check_reads(store: &Store, ids: [u64; 2], models: &[Model; 2]) -> Result<(), TestCaseError> {
    for (i, model) in models.iter().enumerate() {
        let g = store.guild(ids[i]);
        let users: BTreeSet<u64> = g.authorized_users().await.map_err(fail)?.into_iter().map(|u| u.user_id).collect();
        prop_assert_eq!(&users, &model.users, "authorized users of guild {}", i);
        for user in 1..5u64 {
            prop_assert_eq!(g.is_authorized(user).await.map_err(fail)?, model.users.contains(&user));
        }
        let settings: BTreeMap<String, Value> = g.settings().await.map_err(fail)?.into_iter().collect();
        prop_assert_eq!(&settings, &model.settings, "settings of guild {}", i);
        for key in KEYS {
            prop_assert_eq!(g.setting(key).await.map_err(fail)?, model.settings.get(key).cloned());
        }
        let modules: BTreeMap<String, bool> = g.module_states().await.map_err(fail)?.into_iter().collect();
        prop_assert_eq!(&modules, &model.modules, "modules of guild {}", i);
        let mut audit: Vec<i64> = g.setting_audit(None, 1_000).await.map_err(fail)?.into_iter().map(|a| a.id).collect();
        audit.reverse();
        prop_assert_eq!(&audit, &model.audit_ids, "audit trail of guild {}", i);
    }
    Ok(())
}

fn fail(e: StoreError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

async fn run_case(store: &Store, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let base = NEXT_GUILD.fetch_add(2, Ordering::Relaxed);
    let ids = [base, base + 1];
    let mut models = [Model::default(), Model::default()];
    let mut audit: Vec<AuditEntry> = Vec::new();
    for op in ops {
        match op {
            Op::Grant { guild, user } => {
                let new = store.guild(ids[guild]).grant(user, Some(9)).await.map_err(fail)?;
                prop_assert_eq!(new, models[guild].users.insert(user));
            }
            Op::Revoke { guild, user } => {
                let had = store.guild(ids[guild]).revoke(user).await.map_err(fail)?;
                prop_assert_eq!(had, models[guild].users.remove(&user));
            }
            Op::Set { guild, key, value } => {
                let key = KEYS[key];
                let value = value.map(|v| json!({ "v": v, "guild": guild }));
                let change = store.guild(ids[guild]).set_setting(key, value.as_ref(), 7).await.map_err(fail)?;
                let old = match &value {
                    Some(v) => models[guild].settings.insert(key.to_owned(), v.clone()),
                    None => models[guild].settings.remove(key),
                };
                prop_assert_eq!(&change.old, &old);
                models[guild].audit_ids.push(change.audit_id);
                audit.push((guild, change.audit_id, key.to_owned(), old));
            }
            Op::Revert { guild, pick } => {
                let Some((owner, audit_id, key, old)) = audit.get(pick).cloned() else {
                    continue;
                };
                let result = store.guild(ids[guild]).revert_setting(audit_id, 7).await;
                if owner == guild {
                    let change = result.map_err(fail)?;
                    let prev = match &old {
                        Some(v) => models[guild].settings.insert(key.clone(), v.clone()),
                        None => models[guild].settings.remove(&key),
                    };
                    prop_assert_eq!(&change.old, &prev);
                    models[guild].audit_ids.push(change.audit_id);
                    audit.push((guild, change.audit_id, key, prev));
                } else {
                    prop_assert!(
                        matches!(result, Err(StoreError::NotFound(_))),
                        "revert of guild {}'s audit entry through guild {} gave {:?}",
                        owner,
                        guild,
                        result
                    );
                }
            }
            Op::Module { guild, module, enabled } => {
                store.guild(ids[guild]).set_module_enabled(MODULES[module], enabled, 7).await.map_err(fail)?;
                models[guild].modules.insert(MODULES[module].to_owned(), enabled);
            }
        }
        check_reads(store, ids, &models).await?;
    }
    Ok(())
}

fn run_property(store: &Store, rt: &tokio::runtime::Runtime, cases: u32) {
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&proptest::collection::vec(op(), 1..24), |ops| rt.block_on(run_case(store, ops)));
    if let Err(e) = result {
        panic!("guild isolation violated: {e}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

#[test]
fn sqlite_guild_isolation() {
    let rt = runtime();
    let fx = rt.block_on(common::sqlite());
    run_property(&fx.store, &rt, 48);
    rt.block_on(fx.finish());
}

#[test]
fn postgres_guild_isolation() {
    let rt = runtime();
    let Some(fx) = rt.block_on(common::postgres()) else {
        return;
    };
    run_property(&fx.store, &rt, 24);
    rt.block_on(fx.finish());
}
