//! The pseudonym key: read from the environment (`CIVICA_PSEUDONYM_KEY`, or
//! a file named by `CIVICA_PSEUDONYM_KEY_FILE`), never from the pipeline,
//! and never shown: what a log, an error, a manifest or an output may
//! carry is its id, a fingerprint that cannot give the key back.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The variable holding the key itself.
pub const KEY_ENV: &str = "CIVICA_PSEUDONYM_KEY";
/// The variable naming a file that holds the key.
pub const KEY_FILE_ENV: &str = "CIVICA_PSEUDONYM_KEY_FILE";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Hex digits of a pseudonym: 128 bits.
const PSEUDONYM_HEX: usize = 32;
/// Hex digits of a key id: 64 bits.
const KEY_ID_HEX: usize = 16;

/// Why the pseudonym key cannot be used. No variant holds the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither variable is set.
    #[error(
        "pseudonyms need a key: set {KEY_ENV} to at least {MIN_KEY_BYTES} random bytes (for example the output of `openssl rand -base64 48`), or {KEY_FILE_ENV} to a file holding them (readable by its owner only)"
    )]
    Missing,
    /// Both variables are set.
    #[error("{KEY_ENV} and {KEY_FILE_ENV} are both set: set only one")]
    Both,
    /// The key is too short to resist guessing.
    #[error(
        "the pseudonym key from {from} is {len} bytes; it must be at least {MIN_KEY_BYTES} (generate one with `openssl rand -base64 48`)"
    )]
    TooShort {
        /// Where it came from.
        from: &'static str,
        /// Its length.
        len: usize,
    },
    /// The key file cannot be read.
    #[error("cannot read the pseudonym key file `{path}` ({KEY_FILE_ENV}): {source}")]
    Read {
        /// The file.
        path: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is open to others than its owner.
    #[error(
        "the pseudonym key file `{path}` can be read or written by others than its owner (mode {mode:o}): run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// A key for keyed pseudonyms (HMAC-SHA-256). Its `Debug` shows its id only.
#[derive(Clone)]
pub struct PseudonymKey {
    bytes: Arc<[u8]>,
    id: String,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PseudonymKey {
    /// The key the environment gives, if any.
    pub fn from_env() -> Result<Option<PseudonymKey>, KeyError> {
        let inline = std::env::var_os(KEY_ENV).filter(|v| !v.is_empty());
        let file = std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty());
        match (inline, file) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(KeyError::Both),
            (Some(value), None) => {
                use std::os::unix::ffi::OsStrExt;
                PseudonymKey::new(value.as_bytes(), KEY_ENV).map(Some)
            }
            (None, Some(path)) => PseudonymKey::from_file(std::path::Path::new(&path)).map(Some),
        }
    }

    /// The key held in `path`, which only its owner may read or write. A
    /// final line break is not part of the key.
    pub fn from_file(path: &std::path::Path) -> Result<PseudonymKey, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let read = |source| KeyError::Read {
            path: shown.clone(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: shown, mode });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        PseudonymKey::new(bytes, KEY_FILE_ENV)
    }

    /// A key of these bytes, which came `from` the named variable.
    pub fn new(bytes: &[u8], from: &'static str) -> Result<PseudonymKey, KeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                from,
                len: bytes.len(),
            });
        }
        let mut key = PseudonymKey {
            bytes: Arc::from(bytes),
            id: String::new(),
        };
        key.id = hex_prefix(&key.mac(b"civica/key-id"), KEY_ID_HEX);
        Ok(key)
    }

    /// The key's id: the first 64 bits of HMAC(key, "civica/key-id"), in
    /// hex. It names the key in manifests and cannot give it back.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pseudonym of `value` as an identifier of `kind`: the first 128
    /// bits of HMAC-SHA-256(key, kind ‖ 0x00 ‖ normalised value), in hex.
    /// The kind keeps a codice fiscale and a phone number written alike
    /// apart; see [`normalise`] for what is the same value.
    pub fn pseudonym(&self, kind: &str, value: &str) -> String {
        let kind = kind.trim().to_ascii_lowercase();
        let mut message = Vec::with_capacity(kind.len() + 1 + value.len());
        message.extend_from_slice(kind.as_bytes());
        message.push(0);
        message.extend_from_slice(normalise(&kind, value).as_bytes());
        hex_prefix(&self.mac(&message), PSEUDONYM_HEX)
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes)
            .expect("HMAC accepts keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
}

/// What counts as the same value of an identifier: surrounding blanks
/// never matter; a codice fiscale (`cf`) ignores case and inner blanks, an
/// e-mail (`email`) case, a phone number (`phone`) everything but its
/// digits and a leading `+`. Other kinds compare as written, trimmed.
pub fn normalise(kind: &str, value: &str) -> String {
    let value = value.trim();
    match kind {
        "cf" | "codice_fiscale" => value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase(),
        "email" => value.to_lowercase(),
        "phone" => {
            let plus = value.starts_with('+');
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            match plus {
                true => format!("+{digits}"),
                false => digits,
            }
        }
        _ => value.to_string(),
    }
}

fn hex_prefix(bytes: &[u8], digits: usize) -> String {
    let mut hex = hex::encode(bytes);
    hex.truncate(digits);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8) -> PseudonymKey {
        PseudonymKey::new(&[fill; 32], KEY_ENV).expect("32 bytes")
    }

    #[test]
    fn pseudonyms_are_keyed_separated_by_kind_and_normalised() {
        let (a, b) = (key(1), key(2));
        let p = a.pseudonym("cf", "RSSMRA80A01H501U");
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(p, a.pseudonym("CF", " rssmra80a01h501u "));
        assert_ne!(p, b.pseudonym("cf", "RSSMRA80A01H501U"));
        assert_ne!(
            a.pseudonym("cf", "3331234567"),
            a.pseudonym("phone", "3331234567")
        );
        assert_eq!(
            a.pseudonym("phone", "+39 333 123 4567"),
            a.pseudonym("phone", "+393331234567")
        );
        assert_eq!(
            a.pseudonym("email", "Anna@Comune.IT"),
            a.pseudonym("email", "anna@comune.it")
        );
    }

    /// HMAC-SHA-256 as RFC 4231 test case 2 gives it, truncated: the
    /// pseudonym is the standard construction, checkable by any peer.
    #[test]
    fn the_mac_is_rfc_4231_hmac_sha256() {
        let mut k = PseudonymKey::new(&[0u8; 32], KEY_ENV).expect("key");
        k.bytes = Arc::from(&b"Jefe"[..]);
        assert_eq!(
            hex_prefix(&k.mac(b"what do ya want for nothing?"), 64),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn short_keys_and_open_key_files_are_refused_without_showing_the_key() {
        let err = PseudonymKey::new(b"secret-but-short", KEY_ENV).expect_err("short");
        let text = err.to_string();
        assert!(text.contains("16 bytes"), "{text}");
        assert!(!text.contains("secret-but-short"), "{text}");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", "k".repeat(40))).expect("write key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = PseudonymKey::from_file(&path).expect_err("world-readable");
        assert!(err.to_string().contains("mode 644"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let from_file = PseudonymKey::from_file(&path).expect("owner only");
        let inline = PseudonymKey::new("k".repeat(40).as_bytes(), KEY_ENV).expect("key");
        assert_eq!(
            from_file.id(),
            inline.id(),
            "the final line break is not key"
        );
        assert!(!format!("{from_file:?}").contains("kkkk"));
    }
}
