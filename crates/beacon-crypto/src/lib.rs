//! Secrets at rest: the one facility every feature uses to store a credential it was given (a
//! guild's Notion token, a member's API key, a Discord access token), sealed with an AEAD.
//!
//! A [`Keyring`] holds the current 256-bit key and any previous ones. [`Keyring::seal`] encrypts
//! with ChaCha20-Poly1305 (ring), a fresh random nonce and *associated data* that binds the
//! value to where it belongs (e.g. `kb-source:{guild}:{name}`): a sealed value copied to another
//! row, guild or user does not open. The sealed text names the key it was sealed with (the first
//! 4 bytes of the key's SHA-256), so after a rotation — the new key as `BEACON_SECRET_KEY`, the
//! old one in `BEACON_SECRET_KEY_PREVIOUS` — old values still open and new ones use the new key;
//! [`Keyring::needs_reseal`] tells a caller to re-seal a value at its next write.
//!
//! ```
//! use beacon_crypto::Keyring;
//!
//! let keyring = Keyring::new([7u8; 32], Vec::new()).unwrap();
//! let sealed = keyring.seal("secret_abc", "kb-source:42:wiki").unwrap();
//! assert!(!sealed.contains("secret_abc"));
//! assert_eq!(keyring.open(&sealed, "kb-source:42:wiki").unwrap(), "secret_abc");
//! assert!(keyring.open(&sealed, "kb-source:43:wiki").is_err(), "bound to its place");
//! ```

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of every sealed value (the format's version).
const PREFIX: &str = "bk1";

/// Why a key could not be read or a value not sealed or opened. Messages never contain a key or
/// a plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A key is not 32 bytes in base64 or hex.
    #[error("a secret key must be 32 bytes, written in base64 (44 characters) or hex (64)")]
    BadKey,
    /// The sealed text is not in this format.
    #[error("not a sealed value")]
    Malformed,
    /// The value was sealed with a key this keyring does not hold.
    #[error("sealed with key {0}, which is not configured (set it in BEACON_SECRET_KEY_PREVIOUS)")]
    UnknownKey(String),
    /// Wrong key or place, or the value was altered.
    #[error("the sealed value does not open here (altered, or sealed for another place)")]
    Rejected,
    /// The system's random source failed.
    #[error("no randomness available")]
    Random,
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One key, its id, and the signing key derived from it.
struct Key {
    id: String,
    key: LessSafeKey,
    mac: hmac::Key,
}

impl Key {
    fn new(bytes: [u8; 32]) -> Result<Key, CryptoError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let id = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| CryptoError::BadKey)?;
        // A separate key for signatures, so a signature never says anything about the sealing key.
        let mut context = b"beacon link signing:".to_vec();
        context.extend_from_slice(&bytes);
        let mac = hmac::Key::new(hmac::HMAC_SHA256, ring::digest::digest(&ring::digest::SHA256, &context).as_ref());
        Ok(Key { id, key: LessSafeKey::new(unbound), mac })
    }
}

/// The current key and the previous ones.
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
    random: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field("previous", &self.previous.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

/// Reads a 32-byte key written in base64 or hex.
pub fn parse_key(text: &str) -> Result<[u8; 32], CryptoError> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)).collect::<Result<Vec<u8>, _>>().ok()
    } else {
        STANDARD.decode(text).ok()
    };
    bytes.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()).ok_or(CryptoError::BadKey)
}

impl Keyring {
    /// A keyring sealing with `current` and opening with it and `previous`.
    pub fn new(current: [u8; 32], previous: Vec<[u8; 32]>) -> Result<Keyring, CryptoError> {
        let previous = previous.into_iter().map(Key::new).collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring { current: Key::new(current)?, previous, random: SystemRandom::new() })
    }

    /// From configured text: the current key and previous ones (base64 or hex each).
    pub fn from_text(current: &str, previous: &[&str]) -> Result<Keyring, CryptoError> {
        let previous = previous.iter().map(|p| parse_key(p)).collect::<Result<Vec<_>, _>>()?;
        Keyring::new(parse_key(current)?, previous)
    }

    /// The embedded default: the key in `path`, created once (32 random bytes, base64, mode
    /// 0600) when missing. Returns the keyring and whether the file was just created.
    pub fn load_or_create(path: &Path, previous: &[&str]) -> Result<(Keyring, bool), CryptoError> {
        let io = |source| CryptoError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Keyring::from_text(&text, previous)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new().fill(&mut bytes).map_err(|_| CryptoError::Random)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, &format!("{}\n", STANDARD.encode(bytes))).map_err(io)?;
                let previous = previous.iter().map(|p| parse_key(p)).collect::<Result<Vec<_>, _>>()?;
                Ok((Keyring::new(bytes, previous)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for the place `aad` names.
    pub fn seal(&self, plaintext: &str, aad: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut data = plaintext.as_bytes().to_vec();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| CryptoError::Rejected)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}.{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a value sealed for the place `aad` names.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<String, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(PREFIX), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| CryptoError::Malformed)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
        let mut data = rest.to_vec();
        let plain =
            key.key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data).map_err(|_| CryptoError::Rejected)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Rejected)
    }

    /// Signs `message` (e.g. what a link grants and until when) with the current key.
    pub fn sign(&self, message: &str) -> String {
        let tag = hmac::sign(&self.current.mac, message.as_bytes());
        format!("{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `signature` is this keyring's signature of `message` (current or previous key).
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        let Some((id, tag)) = signature.split_once('.') else { return false };
        let Some(key) = std::iter::once(&self.current).chain(&self.previous).find(|k| k.id == id) else {
            return false;
        };
        URL_SAFE_NO_PAD.decode(tag).is_ok_and(|tag| hmac::verify(&key.mac, message.as_bytes(), &tag).is_ok())
    }

    /// Whether `sealed` was sealed with an older key (re-seal it at the next write).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1).is_some_and(|id| id != self.current.id)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_in_their_place_and_never_show_the_plaintext() {
        let k = Keyring::new([1; 32], Vec::new()).unwrap();
        let a = k.seal("token-123", "x:1").unwrap();
        let b = k.seal("token-123", "x:1").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("token-123"));
        assert_eq!(k.open(&a, "x:1").unwrap(), "token-123");
        assert!(matches!(k.open(&a, "x:2"), Err(CryptoError::Rejected)));
        let mut tampered = a.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k.open(&String::from_utf8(tampered).unwrap(), "x:1").is_err());
        assert!(matches!(k.open("plain", "x:1"), Err(CryptoError::Malformed)));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::new([1; 32], Vec::new()).unwrap();
        let sealed = old.seal("v", "p").unwrap();
        let rotated = Keyring::new([2; 32], vec![[1; 32]]).unwrap();
        assert_eq!(rotated.open(&sealed, "p").unwrap(), "v");
        assert!(rotated.needs_reseal(&sealed));
        assert!(!rotated.needs_reseal(&rotated.seal("v", "p").unwrap()));
        let forgot = Keyring::new([2; 32], Vec::new()).unwrap();
        assert!(matches!(forgot.open(&sealed, "p"), Err(CryptoError::UnknownKey(_))));
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_survive_rotation() {
        let k = Keyring::new([4; 32], Vec::new()).unwrap();
        let sig = k.sign("transcript:a:100");
        assert!(k.verify("transcript:a:100", &sig));
        assert!(!k.verify("transcript:a:101", &sig));
        assert!(!k.verify("transcript:a:100", "nonsense"));
        assert!(!k.verify("transcript:a:100", &format!("{}.AAAA", k.current_id())));
        let rotated = Keyring::new([5; 32], vec![[4; 32]]).unwrap();
        assert!(rotated.verify("transcript:a:100", &sig));
        assert!(!Keyring::new([5; 32], Vec::new()).unwrap().verify("transcript:a:100", &sig));
    }

    #[test]
    fn keys_are_read_in_base64_or_hex() {
        let b64 = STANDARD.encode([9u8; 32]);
        assert_eq!(parse_key(&b64).unwrap(), [9u8; 32]);
        assert_eq!(parse_key(&"09".repeat(32)).unwrap(), [9u8; 32]);
        assert!(parse_key("short").is_err());
        assert!(parse_key(&STANDARD.encode([9u8; 31])).is_err());
    }

    #[test]
    fn the_embedded_key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let (first, created) = Keyring::load_or_create(&path, &[]).unwrap();
        assert!(created);
        let (second, created) = Keyring::load_or_create(&path, &[]).unwrap();
        assert!(!created);
        assert_eq!(first.current_id(), second.current_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_and_garbage_never_panics(text in "\\PC{0,200}", garbage in "\\PC{0,120}") {
            let k = Keyring::new([3; 32], Vec::new()).unwrap();
            let sealed = k.seal(&text, "aad").unwrap();
            proptest::prop_assert_eq!(k.open(&sealed, "aad").unwrap(), text);
            let _ = k.open(&garbage, "aad");
            let _ = k.open(&format!("bk1.{}.{garbage}", k.current_id()), "aad");
        }
    }
}
