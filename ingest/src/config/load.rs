//! Loading: the file is read, overrides applied, deserialized with errors that name the key,
//! secrets read from files, then validated.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::env::apply_env_overrides;
use super::kafka::reserved_key_problem;
use super::{Config, ConfigError, Result};

impl Config {
    /// Load a TOML file (or the empty default when `path` is None), apply environment overrides,
    /// and validate.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                (text, path.display().to_string())
            }
            None => (String::new(), "<defaults>".to_owned()),
        };
        Self::from_toml_str(&text, &origin, env)
    }

    /// Parse TOML text, apply overrides, validate.
    pub fn from_toml_str(text: &str, origin: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|error| parse_error(origin, text, None, &error))?;
        let vars = apply_env_overrides(&mut table, env)?;
        let mut config: Config = deserialize_keyed(table).map_err(|(key, source)| {
            if vars.is_empty() {
                // A table has lost the text's positions; the same error read from the text says
                // which line, so which of several `[[apps]]` is wrong.
                let (key, source) =
                    match toml::Deserializer::parse(text).map_err(|error| (None, error)).and_then(deserialize_keyed) {
                        Err(found_in_text) => found_in_text,
                        Ok(_) => (key, source),
                    };
                parse_error(origin, text, key.as_deref(), &source)
            } else {
                ConfigError::ParseWithEnv {
                    origin: origin.to_owned(),
                    vars,
                    message: explain(key.as_deref(), source.message()),
                }
            }
        })?;
        let mut problems = config.read_secret_files();
        problems.extend(config.fingerprint.read_key());
        if let Err(ConfigError::Invalid { problems: more }) = config.validate() {
            problems.extend(more);
        }
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// Read `kafka.librdkafka_files` into `kafka.librdkafka`; returns what could not be read.
    fn read_secret_files(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(kafka) = self.kafka.as_mut() else { return problems };
        for (property, path) in std::mem::take(&mut kafka.librdkafka_files) {
            if let Some(problem) = reserved_key_problem("librdkafka_files", &property) {
                problems.push(problem);
                continue;
            }
            let key = format!("`kafka.librdkafka_files.\"{property}\"`");
            if kafka.librdkafka.contains_key(&property) {
                problems.push(format!("{key} is also set in `kafka.librdkafka`; keep one of the two"));
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let value = text.strip_suffix('\n').map_or(text.as_str(), |v| v.strip_suffix('\r').unwrap_or(v));
                    if value.is_empty() {
                        problems.push(format!("{key}: {} is empty", path.display()));
                    } else {
                        kafka.secret_properties.insert(property.clone());
                        kafka.librdkafka.insert(property, value.to_owned());
                    }
                }
                Err(error) => problems.push(format!("{key}: cannot read {}: {error}", path.display())),
            }
        }
        problems
    }
}

/// A TOML error as line, column, the key it is about and the message, without toml's snippet of
/// the file.
fn parse_error(origin: &str, text: &str, key: Option<&str>, error: &toml::de::Error) -> ConfigError {
    let at = error
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |current| current.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    ConfigError::Parse { origin: origin.to_owned(), at, message: explain(key, error.message()) }
}

/// Deserialize the configuration, keeping the dotted key an error is about (`flush.max_rows`,
/// `apps[1].team`, `kafka.librdkafka."sasl.password"`), which the deserializer's own words lack.
fn deserialize_keyed<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Config, (Option<String>, D::Error)> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| (dotted_key(error.path()), error.into_inner()))
}

/// A path as the config's keys are written in messages; `None` for the whole document.
fn dotted_key(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare { key.push_str(name) } else { key.push_str(&format!("{name:?}")) }
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    (!key.is_empty()).then_some(key)
}

/// The deserializer's message, after the key it is about, with how to write the value where
/// its words are a Rust type's (`expected usize`) or give no example (`expected a duration`).
fn explain(key: Option<&str>, message: &str) -> String {
    let message = message.trim_end();
    let hint = if message.ends_with("expected a duration") {
        "; write a number with a unit, e.g. \"10s\", \"5m\" or \"1h 30m\""
    } else if message.ends_with("expected parsable string") {
        // bytesize's words for a size it cannot read.
        "; write a size with a unit, e.g. \"64 MiB\", \"512MB\" or \"1 GiB\" (a bare number is bytes)"
    } else if message.ends_with("invalid socket address syntax") {
        "; write an IP address and a port, e.g. \"0.0.0.0:9464\" for every interface or \"127.0.0.1:9464\" \
         for this host only (host names are not accepted)"
    } else if ["usize", "u64", "u32", "u16", "u8", "i64", "i32"]
        .iter()
        .any(|t| message.ends_with(&format!("expected {t}")))
    {
        "; write a whole number without quotes, e.g. 1000"
    } else if ["f64", "f32"].iter().any(|t| message.ends_with(&format!("expected {t}"))) {
        "; write a number without quotes, e.g. 2.5"
    } else {
        ""
    };
    match key {
        Some(key) => format!("`{key}`: {message}{hint}"),
        None => format!("{message}{hint}"),
    }
}

/// A secret written as a string (a bearer token, a key). Any other scalar is refused with
/// `refusal` instead of serde's own message, which would quote the value.
pub(crate) fn secret_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    refusal: &'static str,
) -> Result<String, D::Error> {
    struct Text(&'static str);
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a quoted string")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(self.0))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(self.0))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(self.0))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(self.0))
        }
    }
    deserializer.deserialize_any(Text(refusal))
}

/// A table of options passed on as text (`kafka.librdkafka`, `lake.options`), its scalar values
/// taken as text. A value of the wrong shape is reported without itself: it may be a secret
/// (`sasl.password = 20240517` is a number to TOML).
pub(super) fn text_values<'de, D, M>(deserializer: D) -> Result<M, D::Error>
where
    D: serde::Deserializer<'de>,
    M: FromIterator<(String, String)>,
{
    struct AsText;
    impl serde::de::Visitor<'_> for AsText {
        type Value = String;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a string, number or boolean")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(AsText).map(Text)
        }
    }
    let table = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(table.into_iter().map(|(key, Text(value))| (key, value)).collect())
}
