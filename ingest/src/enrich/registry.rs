//! The model registry: the governance artefact micro-app owners pick models
//! from (DESIGN §4).
//!
//! `models.yaml` enters through [`ModelRegistry::from_yaml_str`] or
//! [`ModelRegistry::from_path`]; every entry is validated before anything runs
//! (prices non-negative, pricing present, ids and aliases unique, no unknown
//! keys) and errors name the file, the entry and the key. The resulting
//! registry answers [`ModelRegistry::lookup`] for pricing
//! ([`super::pricing`]) and for the governance checks in analyze.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

use crate::FastHashMap;

/// The registry shipped with driftwatch, used by the demo and as a starting point.
const EMBEDDED_REGISTRY: &str = include_str!("../../../config/models.yaml");

/// Why a registry could not be loaded. Every variant is a configuration
/// mistake: fix the file and restart.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read.
    #[error("cannot read model registry {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The document is not YAML of the expected shape (a top-level `models:` list).
    #[error("{origin}: not a valid model registry, a YAML document with a top-level `models:` list: {source}")]
    Syntax {
        /// File name the text came from.
        origin: String,
        /// The YAML parser's complaint, with line and column.
        source: serde_yaml::Error,
    },
    /// The `models` list is empty: every call would be unpriced and every model unregistered.
    #[error(
        "{origin}: `models` is empty; list at least one model with its `pricing` (with none, every call is unpriced)"
    )]
    NoModels {
        /// File name the text came from.
        origin: String,
    },
    /// One entry failed to deserialize (unknown key, wrong type, unknown risk level, bad date).
    #[error("{origin}: model {entry}: {message}")]
    Entry {
        /// File name the text came from.
        origin: String,
        /// The entry's id and position, or only its position when it has no id.
        entry: String,
        /// The deserializer's message: the key's path (`models[2].risk_level`), the problem and the line.
        message: String,
    },
    /// One entry deserialized but breaks a rule.
    #[error("{origin}: model `{id}`, key `{key}`: {problem}")]
    Invalid {
        /// File name the text came from.
        origin: String,
        /// The entry's id.
        id: String,
        /// The offending key.
        key: &'static str,
        /// What is wrong and what to do about it.
        problem: String,
    },
}

/// Registry result type.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// How much harm a model can do in an app; apps declare the highest level they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Narrow or non-generative models (embeddings, classifiers).
    Low,
    /// General-purpose models used behind review or guard rails.
    Medium,
    /// Models whose output reaches people or systems without review.
    High,
}

impl RiskLevel {
    /// The lowercase name used in config and findings.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
}

/// One price of a model, in force from `effective_from` until the next entry's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// When this price starts to apply; a date means midnight UTC.
    #[serde(deserialize_with = "deserialize_effective_from")]
    pub effective_from: DateTime<Utc>,
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: f64,
    /// USD per 1M input tokens read from the provider's cache; `None` means the input price.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the provider's cache (Anthropic bills them above the
    /// input price); `None` means the input price, as for providers that do not charge writes.
    #[serde(default)]
    pub cache_write_input_per_mtok: Option<f64>,
    /// USD per 1M output tokens (reasoning tokens included).
    pub output_per_mtok: f64,
    /// The rates of a call whose prompt is longer than a threshold, where the provider bills
    /// the whole call at them (Claude Sonnet and Gemini 2.5 Pro above 200k input tokens).
    #[serde(default)]
    pub long_context: Option<LongContextPrice>,
    /// The rates of calls another service tier served, by the tier's name as the provider
    /// reports it (`openai.response.service_tier`): OpenAI bills `flex` at half the standard
    /// rates and `priority` above them. A call served in a tier not listed here (`default`,
    /// `scale`, or none reported) is billed at this price's standard rates; a listed tier's
    /// rates apply to the whole call, whatever its prompt size.
    #[serde(default)]
    pub service_tiers: BTreeMap<String, TierPrice>,
    /// `<model id>@<effective_from date>` (with the time, `...T12:00:00Z`, when the price does not
    /// start at midnight UTC, and its fraction of a second, `...T12:00:00.500Z`, when it has one,
    /// so that no two prices share a version): the `price_version` of events priced with it. Set
    /// when the registry is loaded, so pricing an event formats no date.
    #[serde(skip)]
    pub version: String,
}

/// The rates of a [`Price`] for calls with more than `above_input_tokens` input tokens (cached
/// ones included, as providers count the prompt): every token of such a call is billed at them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContextPrice {
    /// The prompt size, in input tokens, above which these rates apply.
    pub above_input_tokens: i64,
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: f64,
    /// USD per 1M input tokens read from the cache; `None` means this tier's input price.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the cache; `None` means this tier's input price.
    #[serde(default)]
    pub cache_write_input_per_mtok: Option<f64>,
    /// USD per 1M output tokens.
    pub output_per_mtok: f64,
}

/// The rates of a [`Price`] for calls one service tier served.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: f64,
    /// USD per 1M input tokens read from the cache; `None` means this tier's input price.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the cache; `None` means this tier's input price.
    #[serde(default)]
    pub cache_write_input_per_mtok: Option<f64>,
    /// USD per 1M output tokens.
    pub output_per_mtok: f64,
    /// The price's version with `+<tier>` (`o3@2025-06-10+flex`), set when the registry is loaded.
    #[serde(skip)]
    pub version: String,
}

/// The four USD-per-1M-token rates one call is billed at, whichever shape of the registry holds
/// them: a [`Price`]'s own, its [`LongContextPrice`], or a [`TierPrice`]. Each shape keeps its
/// own fields because serde cannot flatten a shared struct into one that refuses unknown keys,
/// which is what names a misspelt rate at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: f64,
    /// USD per 1M input tokens read from the cache; `None` means the input rate.
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the cache; `None` means the input rate.
    pub cache_write_input_per_mtok: Option<f64>,
    /// USD per 1M output tokens.
    pub output_per_mtok: f64,
}

impl Rates {
    /// Each rate beside the registry key it is read from (`keys` in field order), for
    /// validation.
    fn keyed(self, keys: [&'static str; 4]) -> [(&'static str, Option<f64>); 4] {
        [
            (keys[0], Some(self.input_per_mtok)),
            (keys[1], self.cached_input_per_mtok),
            (keys[2], self.cache_write_input_per_mtok),
            (keys[3], Some(self.output_per_mtok)),
        ]
    }
}

/// The registry keys of each shape's rates, in [`Rates`] field order.
const PRICE_RATE_KEYS: [&str; 4] = [
    "pricing.input_per_mtok",
    "pricing.cached_input_per_mtok",
    "pricing.cache_write_input_per_mtok",
    "pricing.output_per_mtok",
];
const LONG_CONTEXT_RATE_KEYS: [&str; 4] = [
    "pricing.long_context.input_per_mtok",
    "pricing.long_context.cached_input_per_mtok",
    "pricing.long_context.cache_write_input_per_mtok",
    "pricing.long_context.output_per_mtok",
];
const TIER_RATE_KEYS: [&str; 4] = [
    "pricing.service_tiers.input_per_mtok",
    "pricing.service_tiers.cached_input_per_mtok",
    "pricing.service_tiers.cache_write_input_per_mtok",
    "pricing.service_tiers.output_per_mtok",
];

/// `rates()` for each shape that holds the four rates as its own fields: serde cannot flatten
/// one shared struct into a shape that refuses unknown keys (which is what names a misspelt
/// rate at start), so each shape keeps the fields and this gathers them.
macro_rules! rates_of {
    ($($shape:ty => $doc:literal),+ $(,)?) => {$(
        impl $shape {
            #[doc = $doc]
            pub fn rates(&self) -> Rates {
                Rates {
                    input_per_mtok: self.input_per_mtok,
                    cached_input_per_mtok: self.cached_input_per_mtok,
                    cache_write_input_per_mtok: self.cache_write_input_per_mtok,
                    output_per_mtok: self.output_per_mtok,
                }
            }
        }
    )+};
}

rates_of! {
    Price => "This price's standard rates.",
    LongContextPrice => "The long-context rates.",
    TierPrice => "The tier's rates.",
}

/// Tier names that mean the standard rates, which the price itself holds.
const STANDARD_TIER_NAMES: [&str; 2] = ["default", "auto"];

/// `(tier, price version)` for each tier a price leaves out that the price before it listed.
/// Tiers belong to one price, so such a price bills that tier's calls at its standard rates:
/// right only if the provider dropped the tier, and otherwise a copy forgotten when the new
/// price was added. `pricing` is in time order.
fn tiers_left_out(pricing: &[Price]) -> Vec<(&str, &str)> {
    pricing
        .windows(2)
        .flat_map(|pair| {
            let (before, after) = (&pair[0], &pair[1]);
            before
                .service_tiers
                .keys()
                .filter(|tier| !after.service_tiers.contains_key(*tier))
                .map(|tier| (tier.as_str(), after.version.as_str()))
        })
        .collect()
}

/// Why a service tier's name cannot be matched against the tier calls report, if it cannot.
fn tier_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("holds a tier with an empty name; name it as the provider reports it (`flex`)".to_owned());
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Some(format!(
            "tier `{name}`: write the name in lower case, as letters, digits, `_` and `-` (calls' tiers are \
             lower-cased before they are matched)"
        ));
    }
    STANDARD_TIER_NAMES.contains(&name).then(|| {
        format!("tier `{name}` is the standard tier, billed at the price's own rates; remove it from service_tiers")
    })
}

/// One registered model with its prices and governance facts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name events carry in `gen_ai.response.model`; unique in the registry, and without
    /// whitespace (a name with it would never match one an event carries).
    pub id: String,
    /// Normalised provider name (`openai`, `anthropic`, `gcp.vertex_ai`, ...).
    pub provider: String,
    /// The provider's version or snapshot label, for the record.
    #[serde(default)]
    pub version: Option<String>,
    /// Other names the same model is called by (provider-specific ids, `-latest` names).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Prices over time, sorted by `effective_from` after loading.
    pub pricing: Vec<Price>,
    /// What the model is approved for.
    #[serde(default)]
    pub intended_uses: Vec<String>,
    /// Known weaknesses app owners must design around.
    #[serde(default)]
    pub limitations: Vec<String>,
    /// Where the training data came from, as far as the provider says.
    #[serde(default)]
    pub data_provenance: Option<String>,
    /// Governance risk level, compared with an app's approved maximum.
    pub risk_level: RiskLevel,
}

/// The file's shape: only a `models` list, so a typo at the top level is caught too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    models: Vec<ModelEntry>,
}

/// The validated model registry with name indexes for lookup.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    /// Entries in file order.
    entries: Vec<ModelEntry>,
    /// Id in ASCII lower case -> entry index.
    by_id: FastHashMap<String, usize>,
    /// Alias in ASCII lower case -> entry indexes; one alias may name models of different
    /// providers.
    by_alias: FastHashMap<String, Vec<usize>>,
}

impl ModelRegistry {
    /// Parses and validates registry YAML; `origin` names the file in error messages.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self> {
        let file: RegistryFile = serde_yaml::from_str(text).map_err(|source| entry_error(text, origin, source))?;
        Self::from_entries(file.models, origin)
    }

    /// Reads and validates a registry file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RegistryError::Read { path: path.to_owned(), source })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// The registry shipped in `config/models.yaml`, compiled into the binary.
    pub fn default_embedded() -> Result<Self> {
        Self::from_yaml_str(EMBEDDED_REGISTRY, "config/models.yaml (embedded)")
    }

    /// Validates entries and builds the indexes.
    fn from_entries(mut entries: Vec<ModelEntry>, origin: &str) -> Result<Self> {
        if entries.is_empty() {
            return Err(RegistryError::NoModels { origin: origin.to_owned() });
        }
        let invalid = |id: &str, key: &'static str, problem: String| RegistryError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            key,
            problem,
        };
        let mut by_id = FastHashMap::with_capacity_and_hasher(entries.len(), Default::default());
        for (index, entry) in entries.iter_mut().enumerate() {
            if entry.id.trim().is_empty() {
                return Err(invalid(&entry.id, "id", "must not be empty".to_owned()));
            }
            if let Some(problem) = whitespace_problem(&entry.id) {
                return Err(invalid(&entry.id, "id", problem));
            }
            if entry.provider.trim().is_empty() {
                return Err(invalid(&entry.id, "provider", "must not be empty".to_owned()));
            }
            if let Some(problem) = whitespace_problem(&entry.provider) {
                return Err(invalid(&entry.id, "provider", problem));
            }
            if let Some(problem) = entry.aliases.iter().find_map(|alias| {
                if alias.is_empty() {
                    Some("holds an empty alias; remove it".to_owned())
                } else {
                    whitespace_problem(alias)
                }
            }) {
                return Err(invalid(&entry.id, "aliases", problem));
            }
            if entry.pricing.is_empty() {
                return Err(invalid(
                    &entry.id,
                    "pricing",
                    "is empty; add at least one price with `effective_from`, `input_per_mtok` and `output_per_mtok`"
                        .to_owned(),
                ));
            }
            for price in &entry.pricing {
                let date = price.effective_from.date_naive();
                let long = price.long_context.as_ref();
                if let Some(long) = long
                    && long.above_input_tokens <= 0
                {
                    return Err(invalid(
                        &entry.id,
                        "pricing.long_context.above_input_tokens",
                        format!(
                            "{} (effective {date}) must be a positive number of input tokens, the prompt size above \
                             which the long-context rates apply",
                            long.above_input_tokens
                        ),
                    ));
                }
                if let Some(problem) = price.service_tiers.keys().find_map(|name| tier_name_problem(name)) {
                    return Err(invalid(&entry.id, "pricing.service_tiers", format!("(effective {date}) {problem}")));
                }
                let keyed_rates = price
                    .rates()
                    .keyed(PRICE_RATE_KEYS)
                    .into_iter()
                    .chain(long.into_iter().flat_map(|long| long.rates().keyed(LONG_CONTEXT_RATE_KEYS)))
                    .chain(price.service_tiers.values().flat_map(|tier| tier.rates().keyed(TIER_RATE_KEYS)));
                for (key, value) in keyed_rates {
                    if let Some(value) = value
                        && !(value.is_finite() && value >= 0.0)
                    {
                        return Err(invalid(
                            &entry.id,
                            key,
                            format!("price {value} (effective {date}) must be a finite number >= 0 USD per 1M tokens"),
                        ));
                    }
                }
            }
            entry.pricing.sort_by_key(|p| p.effective_from);
            // The date alone names a price that starts at midnight UTC, as nearly all do; one that
            // starts within a day keeps its time, and its fraction of a second when it has one
            // (`%.f` writes none for whole seconds), so two prices never share a version (the
            // version is what a wrong price is recomputed by).
            for price in &mut entry.pricing {
                let starts_at_midnight = price.effective_from.time() == chrono::NaiveTime::MIN;
                let format = if starts_at_midnight { "%Y-%m-%d" } else { "%Y-%m-%dT%H:%M:%S%.fZ" };
                price.version = format!("{}@{}", entry.id, price.effective_from.format(format));
                for (name, tier) in &mut price.service_tiers {
                    tier.version = format!("{}+{name}", price.version);
                }
            }
            if let Some(pair) = entry.pricing.windows(2).find(|w| w[0].effective_from == w[1].effective_from) {
                return Err(invalid(
                    &entry.id,
                    "pricing.effective_from",
                    format!(
                        "two prices start at {}; give each price its own effective_from",
                        pair[0].effective_from.to_rfc3339()
                    ),
                ));
            }
            // Said at start, where a forgotten copy is cheap to fix.
            for (tier, price) in tiers_left_out(&entry.pricing) {
                tracing::warn!(
                    registry = origin,
                    model = %entry.id,
                    tier,
                    price,
                    "This price lists no `{tier}` rates, as the one before it did: its {tier} calls are billed at \
                     the standard rates. Copy the tier's rates into the new price unless the provider dropped the \
                     tier."
                );
            }
            if by_id.insert(entry.id.to_ascii_lowercase(), index).is_some() {
                return Err(invalid(
                    &entry.id,
                    "id",
                    "is defined twice (names match ignoring case); ids must be unique (use `aliases` for other names)"
                        .to_owned(),
                ));
            }
        }
        let mut by_alias: FastHashMap<String, Vec<usize>> = FastHashMap::default();
        for (index, entry) in entries.iter().enumerate() {
            for alias in &entry.aliases {
                let alias = alias.to_ascii_lowercase();
                let clash = by_id
                    .get(&alias)
                    .into_iter()
                    .chain(by_alias.get(&alias).into_iter().flatten())
                    .map(|&other| &entries[other])
                    .find(|other| other.provider.eq_ignore_ascii_case(&entry.provider));
                if let Some(other) = clash {
                    return Err(invalid(
                        &entry.id,
                        "aliases",
                        format!(
                            "alias `{alias}` already names model `{}` of the same provider; remove one of them",
                            other.id
                        ),
                    ));
                }
                by_alias.entry(alias).or_default().push(index);
            }
        }
        Ok(Self { entries, by_id, by_alias })
    }

    /// Finds the entry for a model name: exact id, then alias, then the longest id or alias that
    /// is a prefix of `model` followed by `-` or `@` and a version suffix (one that starts with
    /// three or more digits, `vN`, `latest`, or a month and a four-digit year): dated snapshots
    /// like `gpt-4o-2024-08-06`,
    /// `claude-3-5-sonnet@20241022` or `command-r-08-2024` resolve to their model, but
    /// `gpt-4o-realtime-preview`, `gpt-4o-mini-transcribe` or `claude-opus-4-5-20251101` (when
    /// only `claude-opus-4` is registered), other models with other prices, do not.
    /// When `provider` is given, entries of another provider do not match, except that the names
    /// of one provider's own APIs are one provider ([`same_provider`]). Names match ignoring
    /// ASCII case (`GPT-4o` is `gpt-4o`), as providers treat them.
    pub fn lookup(&self, model: &str, provider: Option<&str>) -> Option<&ModelEntry> {
        self.lookup_index(model, provider).and_then(|index| self.entry(index))
    }

    /// [`Self::lookup`] as the entry's index in file order, for [`Self::entry`].
    pub fn lookup_index(&self, model: &str, provider: Option<&str>) -> Option<usize> {
        // Names nearly always arrive in lower case; only the rare other one pays for a copy.
        if model.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return self.lookup_lowercase(&model.to_ascii_lowercase(), provider);
        }
        self.lookup_lowercase(model, provider)
    }

    /// The entry at `index` in file order, as [`Self::lookup_index`] gives it.
    pub fn entry(&self, index: usize) -> Option<&ModelEntry> {
        self.entries.get(index)
    }

    /// [`Self::lookup`] of a name with no ASCII upper case. LiteLLM, OpenRouter and the gateways
    /// built on them name a model `seller/model` (`openai/gpt-4o-mini`, `vertex_ai/gemini-2.5-pro`):
    /// unregistered as a whole, such a name is the model after the slash, provided the seller
    /// before it names the entry's provider too (`azure/gpt-4o` is not OpenAI's price).
    fn lookup_lowercase(&self, model: &str, provider: Option<&str>) -> Option<usize> {
        if let Some(index) = self.lookup_unprefixed(model, provider) {
            return Some(index);
        }
        let (seller, name) = model.split_once('/')?;
        let index = self.lookup_unprefixed(name, Some(seller))?;
        provider.is_none_or(|reported| same_provider(&self.entries[index].provider, reported)).then_some(index)
    }

    /// [`Self::lookup_lowercase`] of the name as it is.
    fn lookup_unprefixed(&self, model: &str, provider: Option<&str>) -> Option<usize> {
        let accepts = |index: usize| provider.is_none_or(|p| same_provider(&self.entries[index].provider, p));
        if let Some(&index) = self.by_id.get(model)
            && accepts(index)
        {
            return Some(index);
        }
        if let Some(index) = self.by_alias.get(model).into_iter().flatten().copied().find(|&index| accepts(index)) {
            return Some(index);
        }
        // A snapshot name: try each prefix that ends at a separator, longest first, so the
        // cost is a few index probes per event rather than a pass over every entry. Among
        // entries of one name, the first in file order wins.
        let first_accepted = |name: &str| {
            self.by_id
                .get(name)
                .into_iter()
                .chain(self.by_alias.get(name).into_iter().flatten())
                .copied()
                .filter(|&index| accepts(index))
                .min()
        };
        model
            .bytes()
            .enumerate()
            .rev()
            .filter(|&(_, byte)| matches!(byte, b'-' | b'@'))
            // The separators are ASCII, so `end` and `end + 1` are char boundaries. Once a
            // suffix holds a word, every longer one does too, so the probes can stop there; a
            // suffix of version tokens that starts with a short number (`5-20251101`) is
            // skipped rather than ending the walk, since a longer one may start with a year.
            .take_while(|&(end, _)| has_only_version_tokens(&model[end + 1..]))
            .filter(|&(end, _)| is_version_suffix(&model[end + 1..]))
            .find_map(|(end, _)| first_accepted(&model[..end]))
    }

    /// All entries in file order.
    pub fn entries(&self) -> impl Iterator<Item = &ModelEntry> {
        self.entries.iter()
    }
}

/// Whether a registry entry's provider and an event's name the same seller of the model, ignoring
/// ASCII case. Google sells Gemini through two APIs at one list price, and each convention names
/// them its own way: OTel GenAI `gcp.vertex_ai` (Vertex AI), `gcp.gemini` (the Gemini API, AI
/// Studio) and `gcp.gen_ai` (the Google Gen AI SDK, either of them); OpenInference `google` and
/// `vertexai`; OpenLIT and older `gen_ai.system` values `gemini` and `vertex_ai`. An entry
/// registered under any of them prices calls reported under the others. Azure OpenAI stays apart
/// from OpenAI: its regional and data-zone deployments are priced differently, so its models are
/// registered under `azure.ai.openai`.
pub fn same_provider(registered: &str, reported: &str) -> bool {
    const GOOGLE: [&str; 7] =
        ["gcp.vertex_ai", "gcp.gemini", "gcp.gen_ai", "google", "vertexai", "gemini", "vertex_ai"];
    let is_google = |name: &str| GOOGLE.iter().any(|google| google.eq_ignore_ascii_case(name));
    registered.eq_ignore_ascii_case(reported) || (is_google(registered) && is_google(reported))
}

/// Why a model name (an id, alias or provider) that holds whitespace is refused: events carry
/// names without it, so it would never match, and a space at either end is invisible in the file.
fn whitespace_problem(name: &str) -> Option<String> {
    name.chars()
        .any(char::is_whitespace)
        .then(|| format!("{name:?} holds whitespace, so no event's model name would ever match it; remove the spaces"))
}

/// Separators between the tokens of a version suffix.
const VERSION_SEPARATORS: [char; 4] = ['-', '.', ':', '@'];

/// Whether what follows a registered name only names a version of it: tokens separated by
/// `-`, `.`, `:` or `@`, each a version token (see [`has_only_version_tokens`]), the first of
/// which says "snapshot": a number of 3 or more digits (a date, `20241022` or `2024-08-06`,
/// or a build, `002`, `0613`, `2411`), `v` and digits (Bedrock's `v2:0`), `latest`, or a month
/// followed by a year (Cohere's `08-2024`). A suffix that starts with a shorter number names
/// another model of the family (`claude-opus-4-1`, `claude-opus-4-5-20251101` next to
/// `claude-opus-4`), which has its own price and must be registered itself, as must a word
/// such as `preview`, `mini` or `realtime`.
fn is_version_suffix(suffix: &str) -> bool {
    if !has_only_version_tokens(suffix) {
        return false;
    }
    let mut tokens = suffix.split(VERSION_SEPARATORS);
    let first = tokens.next().unwrap_or_default();
    let digits = |token: &str| token.bytes().all(|byte| byte.is_ascii_digit());
    let is_month = |token: &str| token.len() == 2 && digits(token) && matches!(token.parse::<u8>(), Ok(1..=12));
    let is_year = |token: &str| token.len() == 4 && digits(token);
    (first.len() >= 3 && digits(first))
        || first.strip_prefix('v').is_some_and(|n| !n.is_empty() && digits(n))
        || first == "latest"
        || (is_month(first) && tokens.next().is_some_and(is_year))
}

/// Whether every token of `suffix` could belong to a version: all digits, `v` and digits, or
/// `latest`. A suffix of `model` that fails fails for every longer suffix too, which is what
/// lets [`ModelRegistry::lookup`] stop probing at the first word.
fn has_only_version_tokens(suffix: &str) -> bool {
    !suffix.is_empty()
        && suffix.split(VERSION_SEPARATORS).all(|token| {
            let digits = token.strip_prefix('v').unwrap_or(token);
            (!digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())) || token == "latest"
        })
}

/// Turns a deserialization error into one that names the entry by its id.
///
/// serde_yaml reports the path (`models[3].pricing[0].input_per_mtok: ...`)
/// and the line, but not the id a person searches the file for; the id is
/// recovered from the index in that path. Errors outside an entry stay
/// [`RegistryError::Syntax`].
fn entry_error(text: &str, origin: &str, source: serde_yaml::Error) -> RegistryError {
    let message = source.to_string();
    let index = message
        .strip_prefix("models[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(index, _)| index.parse::<usize>().ok());
    let Some(index) = index else {
        return RegistryError::Syntax { origin: origin.to_owned(), source };
    };
    let id = serde_yaml::from_str::<serde_yaml::Value>(text)
        .ok()
        .and_then(|doc| Some(doc.get("models")?.get(index)?.get("id")?.as_str()?.to_owned()));
    RegistryError::Entry {
        origin: origin.to_owned(),
        entry: match id {
            Some(id) => format!("`{id}` (entry #{})", index + 1),
            None => format!("#{} (no `id`)", index + 1),
        },
        message,
    }
}

/// Accepts `2026-01-01` (midnight UTC) or an RFC 3339 time.
fn deserialize_effective_from<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_effective_from(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "effective_from `{text}` is neither a date like 2026-01-01 nor an RFC 3339 time like 2026-01-01T00:00:00Z"
        ))
    })
}

/// Parses a date or RFC 3339 time into UTC.
fn parse_effective_from(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests;
