//! Cache keys: every key is namespaced, and guild keys always carry the guild id.

use std::fmt;

/// A cache key. Built only through [`CacheKey::guild`] (`beacon:g:{guild}:{module}:{rest}`) or
/// [`CacheKey::global`] (`beacon:global:{module}:{rest}`), so keys of different guilds never mix
/// and guild keys never collide with global ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

/// Keeps a key segment from introducing extra `:`-separated levels (which could make a module
/// name look like part of another namespace).
fn segment(s: &str) -> String {
    s.replace(':', "_")
}

impl CacheKey {
    /// Key owned by one guild: `beacon:g:{guild_id}:{module}:{rest}`. `rest` may contain `:`.
    pub fn guild(guild_id: u64, module: &str, rest: &str) -> CacheKey {
        CacheKey(format!("beacon:g:{guild_id}:{}:{rest}", segment(module)))
    }

    /// Key not owned by a guild (shard status, global rate limits):
    /// `beacon:global:{module}:{rest}`.
    pub fn global(module: &str, rest: &str) -> CacheKey {
        CacheKey(format!("beacon:global:{}:{rest}", segment(module)))
    }

    /// The full key string as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The guild id for guild keys, `None` for global keys.
    pub fn guild_id(&self) -> Option<u64> {
        self.0.strip_prefix("beacon:g:").and_then(|rest| rest.split(':').next()).and_then(|id| id.parse().ok())
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::CacheKey;

    #[test]
    fn guild_keys_carry_the_guild() {
        let k = CacheKey::guild(42, "tickets", "open:7");
        assert_eq!(k.as_str(), "beacon:g:42:tickets:open:7");
        assert_eq!(k.guild_id(), Some(42));
        assert_ne!(
            CacheKey::guild(1, "m", "x"),
            CacheKey::guild(2, "m", "x"),
            "same module/rest in two guilds must differ"
        );
    }

    #[test]
    fn global_keys_are_separate() {
        let k = CacheKey::global("shards", "0");
        assert_eq!(k.as_str(), "beacon:global:shards:0");
        assert_eq!(k.guild_id(), None);
    }

    #[test]
    fn module_cannot_forge_levels() {
        // A module named "1:x" must not produce the key of guild 1's module "x".
        let forged = CacheKey::guild(9, "1:x", "k");
        assert_eq!(forged.as_str(), "beacon:g:9:1_x:k");
        assert_ne!(CacheKey::global("g:1:x", "k").guild_id(), Some(1));
    }
}
