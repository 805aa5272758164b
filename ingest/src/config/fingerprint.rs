//! The `[fingerprint]` section: the optional secret that keys the content fingerprints.

use std::path::PathBuf;

use serde::Deserialize;

use crate::enrich::FingerprintKey;

/// The key of `input_hash`, `output_hash` and `output_simhash` (DESIGN §10).
///
/// Unset, the fingerprints are unkeyed, as in lakes written before this section existed: anyone
/// who can read the lake can confirm a guessed prompt or answer by fingerprinting the guess. Set,
/// they compare with each other as before but cannot be recomputed without the key. A new key
/// changes every fingerprint written from then on, so snapshot diffs and the drift of repeated
/// inputs do not compare across the change; rows already written keep the values they have.
#[derive(Debug, Clone, Default)]
pub struct FingerprintConfig {
    /// A file holding the key as 64 hex characters (32 bytes; `openssl rand -hex 32`),
    /// surrounding whitespace ignored, read at start: a mounted secret or a systemd credential
    /// keeps the key out of the config.
    pub key_file: Option<PathBuf>,
    /// The key itself as 64 hex characters, meant for the environment
    /// (`DRIFTWATCH_FINGERPRINT__KEY`). At most one of `key` and `key_file` may be set.
    pub key: Option<KeyText>,
    /// The key in use, read from `key` or `key_file` when the configuration is loaded.
    resolved: Option<FingerprintKey>,
}

/// The section as written, before the key is read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintSection {
    key_file: Option<PathBuf>,
    key: Option<KeyText>,
}

impl<'de> Deserialize<'de> for FingerprintConfig {
    /// A table only: serde's own message for a value of another type would quote it, and a key
    /// written as `fingerprint = "..."` is the secret.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> serde::de::Visitor<'de> for Table {
            type Value = FingerprintSection;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<FingerprintSection, A::Error> {
                FingerprintSection::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<FingerprintSection, E> {
                Err(E::custom(NOT_A_TABLE))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<FingerprintSection, E> {
                Err(E::custom(NOT_A_TABLE))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<FingerprintSection, E> {
                Err(E::custom(NOT_A_TABLE))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<FingerprintSection, E> {
                Err(E::custom(NOT_A_TABLE))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<FingerprintSection, E> {
                Err(E::custom(NOT_A_TABLE))
            }
        }
        const NOT_A_TABLE: &str =
            "must be a table, `[fingerprint]` with `key_file = \"/path\"` (its value is not shown)";
        let FingerprintSection { key_file, key } = deserializer.deserialize_any(Table)?;
        Ok(Self { key_file, key, resolved: None })
    }
}

impl FingerprintConfig {
    /// The key fingerprints are made with; `None` keeps them unkeyed.
    pub fn key(&self) -> Option<&FingerprintKey> {
        self.resolved.as_ref()
    }

    /// Read the key from `key` or `key_file`; returns what is wrong, naming the setting and what
    /// to do, never quoting the key.
    pub(super) fn read_key(&mut self) -> Option<String> {
        let read = match (&self.key, &self.key_file) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                Err("`fingerprint.key` (or DRIFTWATCH_FINGERPRINT__KEY) and `fingerprint.key_file` are both set: keep \
                 one of the two"
                    .to_owned())
            }
            (Some(KeyText(text)), None) if text.trim().is_empty() => Err(
                "`fingerprint.key` is empty (DRIFTWATCH_FINGERPRINT__KEY set to nothing?): set the key (make one with \
                 `openssl rand -hex 32`) or remove it"
                    .to_owned(),
            ),
            (Some(KeyText(text)), None) => FingerprintKey::from_hex(text).map_err(|problem| {
                format!(
                    "`fingerprint.key` (or DRIFTWATCH_FINGERPRINT__KEY) {problem}; make one with `openssl rand -hex 32`"
                )
            }),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => FingerprintKey::from_hex(&text).map_err(|problem| {
                    format!(
                        "`fingerprint.key_file`: {path} {problem}; write one with `openssl rand -hex 32 > {path}`",
                        path = path.display()
                    )
                }),
                Err(error) => Err(format!(
                    "`fingerprint.key_file`: cannot read {}: {error}; point it at a file holding the key, or remove \
                     the setting",
                    path.display()
                )),
            },
        };
        match read {
            Ok(key) => {
                self.resolved = Some(key);
                None
            }
            Err(problem) => Some(problem),
        }
    }
}

/// The key as configured. Never shown: its `Debug` is redacted and a value that is not a string
/// is refused without being quoted.
#[derive(Clone)]
pub struct KeyText(String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::secret_string(
            deserializer,
            "the fingerprint key must be a quoted string of 64 hex characters (its value is not shown)",
        )
        .map(KeyText)
    }
}
