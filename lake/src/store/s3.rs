//! An S3 (or S3-compatible) store from the `AWS_*` environment and the lake's options, with
//! every setting checked so that an error names the one to fix.
//!
//! object_store's builder takes most values as text and reads some of them only when it makes
//! a request: an endpoint without its scheme, or a region with a space in it, passes `build`
//! and then panics inside the request signer. Those values are checked here first. Whatever
//! else `build` refuses is blamed on the one setting without which the error goes away, so
//! that `aws_allow_http = "maybe"` is reported as that option and not as all of them.

use std::collections::HashMap;

use object_store::ClientConfigKey;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use tracing::warn;

use super::location_error;
use crate::error::{LakeError, Result};

/// One object-store setting, and the name it was given where it was set.
#[derive(Debug)]
struct Setting {
    /// The option key as configured, or the environment variable.
    name: String,
    key: AmazonS3ConfigKey,
    value: String,
}

/// The process environment as `AmazonS3Builder::from_env` reads it (variables that are not
/// Unicode are skipped, as it skips them).
pub(super) fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

/// Build the store for `bucket` from `env` (the `AWS_*` variables `from_env` would take) and
/// `options` on top of them, or say which setting is wrong.
pub(super) fn build(
    location: &str,
    bucket: &str,
    options: &HashMap<String, String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<AmazonS3> {
    check_bucket(location, bucket)?;
    let settings = settings(location, options, env)?;
    check_values(location, &settings)?;
    let url = format!("s3://{bucket}");
    let build_without = |skipped: Option<usize>| {
        settings
            .iter()
            .enumerate()
            .filter(|&(index, _)| Some(index) != skipped)
            .fold(AmazonS3Builder::new().with_url(url.as_str()), |builder, (_, setting)| {
                builder.with_config(setting.key, setting.value.as_str())
            })
            .build()
    };
    let error = match build_without(None) {
        Ok(store) => {
            for WeakenedSecurity { setting, note } in weakened_security(&settings) {
                warn!(setting, "{note}");
            }
            return Ok(store);
        }
        Err(error) => error,
    };
    if let Err(source) = AmazonS3Builder::new().with_url(url.as_str()).build() {
        return Err(location_error(location, source.to_string()));
    }
    // The culprit is the setting without which this error goes away (a bad value, or the half
    // of a pair whose other half is missing, such as a key id without its secret).
    let message = error.to_string();
    let culprit = (0..settings.len())
        .find(|&index| build_without(Some(index)).map_or_else(|other| other.to_string() != message, |_| true));
    let key = match culprit {
        Some(index) => settings[index].name.clone(),
        None => settings.iter().map(|setting| setting.name.as_str()).collect::<Vec<_>>().join(", "),
    };
    Err(LakeError::StoreConfig { key, location: location.to_owned(), source: Box::new(error) })
}

/// An S3 setting that switches TLS protection off: a legitimate choice against a lab's MinIO,
/// so it is accepted, and said whenever the lake is opened (at every start, and by
/// `check-config`) so that it does not reach production unnoticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WeakenedSecurity {
    /// The option key as configured, or the environment variable.
    pub(super) setting: String,
    /// What it exposes and what to change.
    pub(super) note: &'static str,
}

/// The settings that take effect (the last of each key) and weaken TLS, in the order they were
/// applied. Values are read as object_store reads booleans, ignoring case.
fn weakened_security(settings: &[Setting]) -> Vec<WeakenedSecurity> {
    settings
        .iter()
        .enumerate()
        .filter(|&(index, setting)| !settings[index + 1..].iter().any(|later| later.key == setting.key))
        .filter(|(_, setting)| {
            ["1", "true", "on", "yes", "y"].iter().any(|on| setting.value.trim().eq_ignore_ascii_case(on))
        })
        .filter_map(|(_, setting)| {
            let note = match setting.key {
                AmazonS3ConfigKey::Client(ClientConfigKey::AllowInvalidCertificates) => {
                    "TLS certificate verification is off for the S3 lake: any certificate is taken for the \
                     store's, so anyone on the network path can impersonate it and read or alter the lake; \
                     remove it outside a lab"
                }
                AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp) => {
                    "plain HTTP is allowed for the S3 lake: with an http:// endpoint the lake's data crosses \
                     the network unencrypted and can be altered on the way; use an https:// endpoint and \
                     remove it outside a lab"
                }
                _ => return None,
            };
            Some(WeakenedSecurity { setting: setting.name.clone(), note })
        })
        .collect()
}

/// A bucket name that the URL parser would cut short (`s3://bucket name`, `s3://bucket#x`,
/// `s3://bucket?x`) would silently name another bucket, or none.
fn check_bucket(location: &str, bucket: &str) -> Result<()> {
    if bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        Ok(())
    } else {
        Err(location_error(
            location,
            format!(
                "bucket name {bucket:?} may hold only letters, digits, `.`, `-` and `_` \
                 (S3 itself: lower-case letters, digits, `.` and `-`); write s3://bucket/prefix"
            ),
        ))
    }
}

/// The settings in the order the builder applies them: the environment as `from_env` reads
/// it, then `options`. Two options that name one setting (`aws_region` and `region`) are
/// refused: which one won would depend on the order of a hash map.
fn settings(
    location: &str,
    options: &HashMap<String, String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Setting>> {
    let mut settings: Vec<Setting> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with("AWS_"))
        .filter_map(|(name, value)| Some(Setting { key: name.to_ascii_lowercase().parse().ok()?, name, value }))
        .collect();
    let mut sorted: Vec<(&String, &String)> = options.iter().collect();
    sorted.sort();
    let from_options = settings.len();
    for (name, value) in sorted {
        let key: AmazonS3ConfigKey = name.to_ascii_lowercase().parse().map_err(|_| {
            invalid(
                location,
                name,
                format!(
                    "{name:?} is not an S3 option; the options are object_store's S3 keys, such as \
                     aws_region, aws_endpoint, aws_access_key_id, aws_secret_access_key, aws_session_token, \
                     aws_allow_http, aws_virtual_hosted_style_request and aws_conditional_put \
                     (the AWS_* variable names, in any case)"
                ),
            )
        })?;
        if let Some(other) = settings[from_options..].iter().find(|setting| setting.key == key) {
            return Err(invalid(
                location,
                name,
                format!("{name:?} and {:?} name the same setting; keep one of them", other.name),
            ));
        }
        settings.push(Setting { name: name.clone(), key, value: value.clone() });
    }
    Ok(settings)
}

/// An error about the setting `name`, carried as object_store's own errors are.
fn invalid(location: &str, name: &str, problem: String) -> LakeError {
    LakeError::StoreConfig {
        key: name.to_owned(),
        location: location.to_owned(),
        source: Box::new(object_store::Error::Generic { store: "S3", source: problem.into() }),
    }
}

/// Settings whose value is a URL that the client parses only when it makes a request.
fn holds_url(key: AmazonS3ConfigKey) -> bool {
    matches!(
        key,
        AmazonS3ConfigKey::Endpoint
            | AmazonS3ConfigKey::S3Endpoint
            | AmazonS3ConfigKey::StsEndpoint
            | AmazonS3ConfigKey::MetadataEndpoint
            | AmazonS3ConfigKey::ContainerCredentialsFullUri
    )
}

/// Check the values the builder would only read at the first request, as the builder will use
/// them: the last setting of a URL wins, and a default region only counts when no region is set.
fn check_values(location: &str, settings: &[Setting]) -> Result<()> {
    for (index, setting) in settings.iter().enumerate() {
        let overridden = settings[index + 1..].iter().any(|later| later.key == setting.key);
        if holds_url(setting.key)
            && !overridden
            && let Some(problem) = url_problem(&setting.value)
        {
            return Err(invalid(location, &setting.name, problem));
        }
    }
    let mut region: Option<&Setting> = None;
    for setting in settings {
        match setting.key {
            AmazonS3ConfigKey::Region => region = Some(setting),
            AmazonS3ConfigKey::DefaultRegion if region.is_none() => region = Some(setting),
            _ => {}
        }
    }
    if let Some(setting) = region
        && (setting.value.is_empty()
            || !setting.value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        return Err(invalid(
            location,
            &setting.name,
            format!(
                "region {:?} may hold only lower-case letters, digits and `-`, e.g. \"eu-west-1\" \
                 (an S3-compatible store that ignores regions takes \"us-east-1\")",
                setting.value
            ),
        ));
    }
    Ok(())
}

/// Why `value` is not an `http://` or `https://` URL with a host, as the HTTP client will parse
/// it (it accepts ASCII only, and no spaces).
fn url_problem(value: &str) -> Option<String> {
    let after_scheme = ["http://", "https://"]
        .iter()
        .find_map(|scheme| value.get(..scheme.len()).filter(|p| p.eq_ignore_ascii_case(scheme)).map(|_| scheme.len()))
        .map(|at| &value[at..]);
    let Some(rest) = after_scheme else {
        return Some(format!(
            "{value:?} is not a URL starting with http:// or https://; write the scheme too, e.g. \"http://{}\"",
            value.split("://").last().unwrap_or(value).trim()
        ));
    };
    if let Some(bad) = value
        .chars()
        .find(|&c| !c.is_ascii_graphic() || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'))
    {
        return Some(format!("{value:?} holds {bad:?}, which a URL cannot; remove it"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, after)| after);
    let (host, port) = match host_and_port.strip_prefix('[') {
        // An IPv6 address: `[::1]:9000`.
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, tail)) if tail.is_empty() || tail.starts_with(':') => (host, tail.strip_prefix(':')),
            _ => return Some(format!("{value:?} has an unclosed `[` in its host")),
        },
        None => match host_and_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_and_port, None),
        },
    };
    if host.is_empty() {
        return Some(format!("{value:?} has no host; write it as e.g. \"http://127.0.0.1:9000\""));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Some(format!("{value:?} has port {port:?}; a port is a number from 0 to 65535"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|&(key, value)| (key.to_owned(), value.to_owned())).collect()
    }

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    /// The key and the text of the error `build` gives, or `None` when it builds.
    fn refused(
        location: &str,
        bucket: &str,
        pairs: &[(&str, &str)],
        env: Vec<(String, String)>,
    ) -> Option<(String, String)> {
        let error = build(location, bucket, &options(pairs), env).err()?;
        let key = match &error {
            LakeError::StoreConfig { key, .. } => key.clone(),
            _ => "(location)".to_owned(),
        };
        Some((key, error.to_string()))
    }

    #[test]
    fn an_endpoint_without_its_scheme_or_host_is_named_with_the_fix() {
        for (endpoint, expected) in [
            ("127.0.0.1:9000", "write the scheme too, e.g. \"http://127.0.0.1:9000\""),
            ("minio.local", "e.g. \"http://minio.local\""),
            ("http://", "has no host"),
            ("http://minio:90000", "a port is a number"),
            ("http://min io:9000", "which a URL cannot"),
            ("ftp://minio", "http:// or https://"),
        ] {
            let found = refused("s3://b/x", "b", &[("aws_endpoint", endpoint)], no_env());
            assert!(
                found.as_ref().is_some_and(|(key, text)| key == "aws_endpoint" && text.contains(expected)),
                "{endpoint}: {found:?}"
            );
        }
        for endpoint in ["http://127.0.0.1:9000", "https://s3.example.com/", "http://[::1]:9000", "http://minio"] {
            assert_eq!(refused("s3://b/x", "b", &[("aws_endpoint", endpoint)], no_env()), None, "{endpoint}");
        }
    }

    #[test]
    fn an_endpoint_from_the_environment_is_named_by_its_variable_unless_an_option_overrides_it() {
        let env = vec![("AWS_ENDPOINT_URL".to_owned(), "localhost:9000".to_owned())];
        let found = refused("s3://b", "b", &[], env.clone());
        assert!(found.as_ref().is_some_and(|(key, _)| key == "AWS_ENDPOINT_URL"), "{found:?}");
        assert_eq!(refused("s3://b", "b", &[("endpoint", "http://localhost:9000")], env), None);
        let unrelated = vec![("AWS_NOT_A_SETTING".to_owned(), "x y".to_owned()), ("HOME".to_owned(), "/".to_owned())];
        assert_eq!(refused("s3://b", "b", &[], unrelated), None, "as from_env, unknown variables are skipped");
    }

    #[test]
    fn a_region_is_lower_case_letters_digits_and_dashes() {
        for region in ["eu west 1", "", "EU-WEST-1", "eu_west_1"] {
            let found = refused("s3://b", "b", &[("aws_region", region)], no_env());
            assert!(
                found.as_ref().is_some_and(|(key, text)| key == "aws_region" && text.contains("\"eu-west-1\"")),
                "{region:?}: {found:?}"
            );
        }
        let env = vec![("AWS_DEFAULT_REGION".to_owned(), "eu west".to_owned())];
        let found = refused("s3://b", "b", &[], env.clone());
        assert!(found.as_ref().is_some_and(|(key, _)| key == "AWS_DEFAULT_REGION"), "{found:?}");
        assert_eq!(refused("s3://b", "b", &[("aws_region", "eu-west-1")], env), None, "a region overrides the default");
    }

    #[test]
    fn a_value_object_store_refuses_is_blamed_on_its_own_option() {
        let good = [("aws_region", "eu-west-1"), ("aws_endpoint", "http://127.0.0.1:9000")];
        for (key, value) in [
            ("aws_allow_http", "maybe"),
            ("aws_conditional_put", "disabld"),
            ("aws_virtual_hosted_style_request", "sometimes"),
        ] {
            let mut pairs = good.to_vec();
            pairs.push((key, value));
            let found = refused("s3://b", "b", &pairs, no_env());
            assert!(found.as_ref().is_some_and(|(found_key, _)| found_key == key), "{key}: {found:?}");
            assert!(!found.is_some_and(|(_, text)| text.contains("all options")));
        }
        // Half of a pair: the key id without its secret.
        let found = refused("s3://b", "b", &[("aws_access_key_id", "id")], no_env());
        assert!(found.as_ref().is_some_and(|(key, _)| key == "aws_access_key_id"), "{found:?}");
    }

    /// The settings [`weakened_security`] finds among `pairs` and `env`.
    fn weakened(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> Vec<String> {
        let env = env.iter().map(|&(name, value)| (name.to_owned(), value.to_owned()));
        let found = settings("s3://b", &options(pairs), env).map(|settings| weakened_security(&settings));
        found.unwrap_or_default().into_iter().map(|found| found.setting).collect()
    }

    #[test]
    fn each_setting_that_switches_tls_off_is_noted_once() {
        for value in ["true", "TRUE", "True", "1", "on", "yes", "y"] {
            for key in ["allow_invalid_certificates", "aws_allow_http", "ALLOW_HTTP", "aws_allow_invalid_certificates"]
            {
                assert_eq!(weakened(&[(key, value)], &[]), [key], "{key} = {value}");
            }
        }
        assert_eq!(
            weakened(&[("allow_invalid_certificates", "true"), ("aws_allow_http", "true"), ("aws_region", "x")], &[]),
            ["allow_invalid_certificates", "aws_allow_http"]
        );
        assert_eq!(weakened(&[], &[("AWS_ALLOW_HTTP", "true")]), ["AWS_ALLOW_HTTP"], "the environment counts too");
        assert_eq!(weakened(&[("aws_allow_http", "false")], &[("AWS_ALLOW_HTTP", "true")]), Vec::<String>::new());
        for value in ["false", "0", "off", "no"] {
            assert_eq!(weakened(&[("allow_invalid_certificates", value)], &[]), Vec::<String>::new(), "{value}");
        }
        let notes = settings("s3://b", &options(&[("aws_allow_http", "true")]), no_env())
            .map(|settings| weakened_security(&settings))
            .unwrap_or_default();
        assert!(notes.iter().all(|found| found.note.contains("outside a lab")), "{notes:?}");
    }

    #[test]
    fn a_store_that_switches_tls_off_still_builds() {
        let pairs = [("allow_invalid_certificates", "true"), ("aws_allow_http", "true")];
        assert_eq!(refused("s3://b", "b", &pairs, no_env()), None);
    }

    #[test]
    fn two_options_for_one_setting_are_refused() {
        let found = refused("s3://b", "b", &[("aws_region", "eu-west-1"), ("region", "us-east-1")], no_env());
        assert!(found.as_ref().is_some_and(|(_, text)| text.contains("name the same setting")), "{found:?}");
    }

    #[test]
    fn a_bucket_the_url_parser_would_cut_short_is_a_location_error() {
        for (location, bucket) in [("s3://bucket name/x", "bucket name"), ("s3://u@b/x", "u@b"), ("s3://b?x", "b?x")] {
            let found = refused(location, bucket, &[], no_env());
            assert!(
                found.as_ref().is_some_and(|(key, text)| key == "(location)" && text.contains("bucket name")),
                "{location}: {found:?}"
            );
        }
    }
}
