//! `DRIFTWATCH_<SECTION>__<KEY>` environment overrides, laid over the parsed file.

use super::{ConfigError, Result};

/// Prefix of configuration overrides in the environment; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "DRIFTWATCH_";

/// Overlay `DRIFTWATCH_A__B__C=value` onto `a.b.c`. Values parse as TOML scalars (numbers,
/// booleans, quoted strings, arrays) when they can and are strings otherwise, except under
/// `kafka.librdkafka`, `kafka.librdkafka_files` and `lake.options` and for `http.bearer_token` and
/// `fingerprint.key`, which are always text (one pair of surrounding double quotes dropped).
/// Variables with a single `_` after the prefix (`DRIFTWATCH_CONFIG`) are CLI flags, not config
/// keys, and are left alone.
/// Returns the variables applied, in order.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env { var, reason: "empty key segment (use A__B, not A____B)".to_owned() });
        }
        let parsed = if is_text_key(&path) {
            let unquoted = value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(&value);
            toml::Value::String(unquoted.to_owned())
        } else {
            parse_env_value(&value)
        };
        let mut node = &mut *table;
        for segment in &path[..path.len() - 1] {
            let entry = node.entry(segment.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        reason: format!("`{segment}` is not a table in the config, so it has no sub-keys"),
                    });
                }
            };
        }
        if let Some(last) = path.last() {
            node.insert(last.clone(), parsed);
        }
        applied.push(var);
    }
    Ok(applied)
}

/// Keys whose environment values are taken as text, never as TOML: librdkafka properties, object
/// store options, the bearer token and the fingerprint key are text, and a secret such as
/// `20240517`, `0x1F` or a hex key that reads as a float (`0e12...`) must not become a number
/// (changing it, or failing with the value in the message). One pair of surrounding double
/// quotes is dropped, as TOML would, so `'"2024"'` still means `2024`.
fn is_text_key(path: &[String]) -> bool {
    match path {
        [section, key] => (section == "http" && key == "bearer_token") || (section == "fingerprint" && key == "key"),
        [kafka, table, ..] if kafka == "kafka" => table == "librdkafka" || table == "librdkafka_files",
        [lake, options, ..] => lake == "lake" && options == "options",
        _ => false,
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| toml::Value::String(value.to_owned())),
        Err(_) => toml::Value::String(value.to_owned()),
    }
}
