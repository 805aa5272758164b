use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

const TWO_PROVIDERS: &str = r#"
models:
  - id: gpt-4o
    provider: openai
    aliases: [chatgpt-4o-latest]
    pricing:
      - {effective_from: 2026-11-15, input_per_mtok: 2.0, output_per_mtok: 8.0}
      - {effective_from: "2024-08-06T00:00:00Z", input_per_mtok: 2.5, cached_input_per_mtok: 1.25, output_per_mtok: 10.0}
    risk_level: high
  - id: gpt-4o-azure
    provider: azure.ai.openai
    aliases: [gpt-4o, prod-chat]
    pricing:
      - {effective_from: 2024-08-06, input_per_mtok: 2.5, output_per_mtok: 10.0}
    risk_level: medium
  - id: gpt-4o-mini
    provider: openai
    pricing:
      - {effective_from: 2024-07-18, input_per_mtok: 0.15, output_per_mtok: 0.6}
    risk_level: medium
"#;

fn found<'a>(registry: &'a ModelRegistry, model: &str, provider: Option<&str>) -> Option<&'a str> {
    registry.lookup(model, provider).map(|e| e.id.as_str())
}

#[test]
fn lookup_exact_alias_snapshot_and_provider() -> TestResult {
    let registry = ModelRegistry::from_yaml_str(TWO_PROVIDERS, "test.yaml")?;
    assert_eq!(found(&registry, "gpt-4o", None), Some("gpt-4o"));
    assert_eq!(found(&registry, "gpt-4o", Some("openai")), Some("gpt-4o"));
    assert_eq!(found(&registry, "chatgpt-4o-latest", None), Some("gpt-4o"));
    assert_eq!(found(&registry, "prod-chat", Some("azure.ai.openai")), Some("gpt-4o-azure"));
    // The Azure entry claims the bare name through an alias for its own provider.
    assert_eq!(found(&registry, "gpt-4o", Some("azure.ai.openai")), Some("gpt-4o-azure"));
    // Dated snapshots resolve to the longest matching id, not a shorter one.
    assert_eq!(found(&registry, "gpt-4o-2024-08-06", Some("openai")), Some("gpt-4o"));
    assert_eq!(found(&registry, "gpt-4o-mini-2024-07-18", None), Some("gpt-4o-mini"));
    assert_eq!(found(&registry, "gpt-4o@2024-08-06", None), Some("gpt-4o"));
    // A prefix must end at a separator: `gpt-4omni` is another model.
    assert_eq!(found(&registry, "gpt-4omni", None), None);
    assert_eq!(found(&registry, "gpt-4o-mini", Some("anthropic")), None);
    assert_eq!(found(&registry, "claude-sonnet-4-5", None), None);
    // Only a version may follow: other models that share the stem are not priced as it.
    assert_eq!(found(&registry, "gpt-4o-20241120", None), Some("gpt-4o"));
    assert_eq!(found(&registry, "gpt-4o-mini-2024-07-18-v2:0", None), Some("gpt-4o-mini"));
    assert_eq!(found(&registry, "gpt-4o-realtime-preview", None), None);
    assert_eq!(found(&registry, "gpt-4o-realtime-preview-2024-12-17", None), None);
    assert_eq!(found(&registry, "gpt-4o-mini-transcribe", None), None);
    assert_eq!(found(&registry, "gpt-4o-audio-preview-2024-12-17", None), None);
    Ok(())
}

/// The instrumentation audit's LiteLLM span: `openai/gpt-4o-mini` was left unpriced. A
/// `seller/` prefix resolves when the seller is the entry's provider, and never across sellers.
#[test]
fn a_gateways_seller_prefix_names_the_sellers_model() -> TestResult {
    let registry = ModelRegistry::from_yaml_str(TWO_PROVIDERS, "test.yaml")?;
    assert_eq!(found(&registry, "openai/gpt-4o-mini", Some("openai")), Some("gpt-4o-mini"));
    assert_eq!(found(&registry, "OpenAI/gpt-4o-mini-2024-07-18", None), Some("gpt-4o-mini"));
    assert_eq!(found(&registry, "openai/gpt-4o", None), Some("gpt-4o"));
    assert_eq!(found(&registry, "azure/gpt-4o", None), None, "Azure's deployments have their own prices");
    assert_eq!(found(&registry, "anthropic/gpt-4o-mini", None), None);
    assert_eq!(found(&registry, "openai/gpt-4o-mini", Some("anthropic")), None, "the event's provider still counts");
    assert_eq!(found(&registry, "openai/", None), None);
    assert_eq!(found(&registry, "/gpt-4o", None), None);
    Ok(())
}

/// Gemini is one model at one list price whichever Google API serves it and whichever
/// convention names that API; other providers stay apart, Azure OpenAI from OpenAI too.
#[test]
fn the_names_of_googles_apis_are_one_provider() -> TestResult {
    let registry = ModelRegistry::default_embedded()?;
    for reported in ["gcp.vertex_ai", "gcp.gemini", "gcp.gen_ai", "google", "vertexai", "Gemini", "vertex_ai"] {
        assert_eq!(found(&registry, "gemini-2.5-flash", Some(reported)), Some("gemini-2.5-flash"), "{reported}");
    }
    assert_eq!(found(&registry, "gemini-2.5-flash", Some("openai")), None);
    assert_eq!(found(&registry, "gpt-4o", Some("gcp.gemini")), None);
    assert_eq!(found(&registry, "gpt-4o-2024-08-06", Some("azure.ai.openai")), None);
    assert!(same_provider("OpenAI", "openai"));
    assert!(!same_provider("openai", "azure.ai.openai"));
    Ok(())
}

/// Providers treat model names without regard to case, and so does the registry: an app that
/// reports `GPT-4o` is priced as `gpt-4o`, and two ids that differ only in case are one id.
#[test]
fn names_match_ignoring_case() -> TestResult {
    let registry = ModelRegistry::from_yaml_str(TWO_PROVIDERS, "test.yaml")?;
    assert_eq!(found(&registry, "GPT-4o", None), Some("gpt-4o"));
    assert_eq!(found(&registry, "ChatGPT-4o-Latest", Some("OpenAI")), Some("gpt-4o"));
    assert_eq!(found(&registry, "GPT-4o-Mini-2024-07-18", None), Some("gpt-4o-mini"));
    assert_eq!(found(&registry, "Prod-Chat", Some("azure.ai.openai")), Some("gpt-4o-azure"));
    assert_eq!(found(&registry, "GPT-4o-Realtime-Preview", None), None);

    let custom = format!("models:\n  - id: Corp-LLM\n    provider: internal\n    risk_level: low\n{PRICE}");
    let registry = ModelRegistry::from_yaml_str(&custom, "test.yaml")?;
    assert_eq!(found(&registry, "corp-llm", None), Some("Corp-LLM"), "the entry keeps its id as written");
    assert_eq!(found(&registry, "CORP-LLM-2025-01-01", None), Some("Corp-LLM"));

    let twice = format!("{custom}  - id: corp-llm\n    provider: internal\n    risk_level: low\n{PRICE}");
    let message = ModelRegistry::from_yaml_str(&twice, "test.yaml").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("defined twice"), "{message}");
    Ok(())
}

/// The snapshot rule written the slow, obvious way: a pass over every entry and name, keeping
/// the longest accepted name that is a prefix of `model` followed by `-` or `@` and a version
/// (the first in file order among equally long ones).
fn snapshot_by_scan<'a>(registry: &'a ModelRegistry, model: &str, provider: Option<&str>) -> Option<&'a str> {
    let mut best: Option<(usize, &ModelEntry)> = None;
    for entry in registry.entries().filter(|e| provider.is_none_or(|p| same_provider(&e.provider, p))) {
        for name in std::iter::once(&entry.id).chain(&entry.aliases) {
            // A version suffix by its definition: separator-split tokens, each digits, `v` and
            // digits, or `latest`; the first one 3+ digits, `v` and digits, `latest`, or a
            // month 01-12 followed by a 4-digit year.
            let version = |suffix: &str| {
                let tokens: Vec<&str> = suffix.split(['-', '.', ':', '@']).collect();
                let number = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
                let vn = |t: &str| t.len() >= 2 && t.starts_with('v') && number(&t[1..]);
                let first = tokens[0];
                !suffix.is_empty()
                    && tokens.iter().all(|&t| t == "latest" || number(t) || vn(t))
                    && (first == "latest"
                        || vn(first)
                        || number(first) && first.len() >= 3
                        || ("01"..="12").contains(&first)
                            && first.len() == 2
                            && tokens.get(1).is_some_and(|y| y.len() == 4 && number(y)))
            };
            let is_snapshot = model.len() > name.len()
                && model.starts_with(name.as_str())
                && matches!(model.as_bytes()[name.len()], b'-' | b'@')
                && version(&model[name.len() + 1..]);
            if is_snapshot && best.is_none_or(|(len, _)| name.len() > len) {
                best = Some((name.len(), entry));
            }
        }
    }
    best.map(|(_, entry)| entry.id.as_str())
}

#[test]
fn snapshot_lookup_by_prefix_probes_agrees_with_a_scan_of_every_name() -> TestResult {
    // Two entries of one provider share the name `shared`, once as an id's alias and once as
    // an alias further down: the first in file order wins, whichever kind of name it is.
    let shared = format!(
        "{TWO_PROVIDERS}  - id: o1\n    provider: openai\n    aliases: [shared, gpt-4o-mini-x]\n    risk_level: low\n{PRICE}  - id: o2\n    provider: anthropic\n    aliases: [shared]\n    risk_level: low\n{PRICE}"
    );
    for registry in [ModelRegistry::default_embedded()?, ModelRegistry::from_yaml_str(&shared, "test.yaml")?] {
        let names: Vec<String> =
            registry.entries().flat_map(|e| std::iter::once(e.id.clone()).chain(e.aliases.clone())).collect();
        let mut providers: Vec<Option<String>> = registry.entries().map(|e| Some(e.provider.to_uppercase())).collect();
        providers.extend([None, Some("unknown".to_owned())]);
        let mut checked = 0;
        for name in &names {
            for suffix in [
                "-2024-08-06",
                "@2025",
                "-x-y",
                "x-1",
                "-",
                "@",
                "-mini-2024",
                "",
                "-20241022-v2:0",
                "-latest",
                "-preview",
                "-5-20251101",
                "-1",
                "-08-2024",
                "-2024-5-20251101",
            ] {
                let model = format!("{name}{suffix}");
                for provider in &providers {
                    let provider = provider.as_deref();
                    // Exact names are looked up first; the scan rule covers what is left.
                    let exact = registry.by_id.contains_key(&model) || registry.by_alias.contains_key(&model);
                    if !exact {
                        assert_eq!(
                            found(&registry, &model, provider),
                            snapshot_by_scan(&registry, &model, provider),
                            "{model} {provider:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 200, "only {checked} names checked");
    }
    let registry = ModelRegistry::from_yaml_str(&shared, "test.yaml")?;
    assert_eq!(found(&registry, "shared-2026-01-01", None), Some("o1"));
    assert_eq!(found(&registry, "shared-2026-01-01", Some("anthropic")), Some("o2"));
    assert_eq!(found(&registry, "gpt-4o-mini-x-2026", None), Some("o1"), "the longest name wins");
    Ok(())
}

#[test]
fn pricing_is_sorted_and_dates_accepted() -> TestResult {
    let registry = ModelRegistry::from_yaml_str(TWO_PROVIDERS, "test.yaml")?;
    let entry = registry.lookup("gpt-4o", Some("openai")).ok_or("gpt-4o missing")?;
    let starts: Vec<String> = entry.pricing.iter().map(|p| p.effective_from.to_rfc3339()).collect();
    assert_eq!(starts, ["2024-08-06T00:00:00+00:00", "2026-11-15T00:00:00+00:00"]);
    assert_eq!(entry.pricing[0].cached_input_per_mtok, Some(1.25));
    assert_eq!(entry.pricing[1].cached_input_per_mtok, None);
    assert_eq!(registry.entries().count(), 3);
    Ok(())
}

#[test]
fn embedded_registry_has_the_demo_models() -> TestResult {
    let registry = ModelRegistry::default_embedded()?;
    for id in
        ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash", "text-embedding-3-small"]
    {
        assert_eq!(found(&registry, id, None), Some(id));
    }
    // A real price change is registered: o3's 80 % cut of 2025-06-10.
    let o3 = registry.lookup("o3-2025-04-16", Some("openai")).ok_or("o3 is registered")?;
    let starts: Vec<String> = o3.pricing.iter().map(|price| price.effective_from.date_naive().to_string()).collect();
    assert_eq!(starts, ["2025-04-16", "2025-06-10"]);
    assert_eq!(found(&registry, "o3-mini", None), None, "o3-mini is another model");
    let providers: std::collections::BTreeSet<&str> = registry.entries().map(|e| e.provider.as_str()).collect();
    for provider in ["openai", "anthropic", "gcp.vertex_ai", "azure.ai.openai", "aws.bedrock"] {
        assert!(providers.contains(provider), "no {provider} model");
    }
    assert_eq!(
        found(&registry, "anthropic.claude-3-5-haiku-20241022-v1:0", Some("aws.bedrock")),
        Some("anthropic.claude-3-5-haiku")
    );
    assert!(RiskLevel::Low < RiskLevel::Medium && RiskLevel::Medium < RiskLevel::High);
    // Names that share gpt-4o's stem but not its price are registered on their own.
    let launch_price = |model: &str| {
        let entry = registry.lookup(model, Some("openai"))?;
        entry.pricing.first().map(|p| (entry.id.as_str(), p.input_per_mtok, p.output_per_mtok))
    };
    assert_eq!(launch_price("gpt-4o-2024-05-13"), Some(("gpt-4o-2024-05-13", 5.0, 15.0)));
    assert_eq!(launch_price("chatgpt-4o-latest"), Some(("chatgpt-4o-latest", 5.0, 15.0)));
    assert_eq!(launch_price("gpt-4o-2024-11-20"), Some(("gpt-4o", 2.5, 10.0)));
    Ok(())
}

fn error_of(yaml: &str) -> String {
    match ModelRegistry::from_yaml_str(yaml, "bad.yaml") {
        Ok(_) => "loaded".to_owned(),
        Err(e) => e.to_string(),
    }
}

const PRICE: &str = "    pricing:\n      - {effective_from: 2025-01-01, input_per_mtok: 1.0, output_per_mtok: 2.0}\n";

#[test]
fn validation_errors_name_file_entry_and_key() {
    let negative = "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n    pricing:\n      - {effective_from: 2025-01-01, input_per_mtok: -1.0, output_per_mtok: 2.0}\n";
    let message = error_of(negative);
    assert!(message.contains("bad.yaml") && message.contains("`m1`"), "{message}");
    assert!(message.contains("pricing.input_per_mtok") && message.contains(">= 0"), "{message}");

    let empty = "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n    pricing: []\n";
    let message = error_of(empty);
    assert!(message.contains("`m1`") && message.contains("`pricing`") && message.contains("is empty"), "{message}");

    let duplicate = format!(
        "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n{PRICE}  - id: m1\n    provider: openai\n    risk_level: low\n{PRICE}"
    );
    let message = error_of(&duplicate);
    assert!(message.contains("`m1`") && message.contains("defined twice"), "{message}");

    let risk = format!("models:\n  - id: m2\n    provider: openai\n    risk_level: extreme\n{PRICE}");
    let message = error_of(&risk);
    assert!(message.contains("bad.yaml") && message.contains("`m2`") && message.contains("extreme"), "{message}");
    assert!(message.contains("risk_level") && message.contains("line 4"), "{message}");

    let second = format!(
        "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n{PRICE}  - id: m5\n    provider: openai\n    risk_level: low\n    pricing:\n      - {{effective_from: 2025-01-01, input_per_mtok: abc, output_per_mtok: 2.0}}\n"
    );
    let message = error_of(&second);
    assert!(message.contains("`m5` (entry #2)") && message.contains("input_per_mtok"), "{message}");

    let unknown = format!("models:\n  - id: m3\n    provider: openai\n    risk_levle: low\n{PRICE}");
    let message = error_of(&unknown);
    assert!(message.contains("`m3`") && message.contains("risk_levle"), "{message}");

    let bad_date = "models:\n  - id: m4\n    provider: openai\n    risk_level: low\n    pricing:\n      - {effective_from: next tuesday, input_per_mtok: 1.0, output_per_mtok: 2.0}\n";
    let message = error_of(bad_date);
    assert!(message.contains("`m4`") && message.contains("next tuesday"), "{message}");

    let top = "model:\n  - id: m5\n";
    assert!(error_of(top).contains("bad.yaml"));
    let no_id = format!("models:\n  - provider: openai\n    risk_level: low\n{PRICE}");
    let message = error_of(&no_id);
    assert!(message.contains("#1 (no `id`)") && message.contains("missing field `id`"), "{message}");

    let alias_clash = format!(
        "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n{PRICE}  - id: m2\n    provider: openai\n    aliases: [m1]\n    risk_level: low\n{PRICE}"
    );
    let message = error_of(&alias_clash);
    assert!(message.contains("`m2`") && message.contains("aliases") && message.contains("m1"), "{message}");
}

#[test]
fn a_cache_write_price_is_read_and_validated_like_the_others() -> TestResult {
    let yaml = |price: &str| {
        format!(
            "models:\n  - id: m1\n    provider: anthropic\n    risk_level: low\n    pricing:\n      - {{effective_from: \
             2025-01-01, input_per_mtok: 1.0, cache_write_input_per_mtok: {price}, output_per_mtok: 2.0}}\n"
        )
    };
    let registry = ModelRegistry::from_yaml_str(&yaml("1.25"), "test.yaml")?;
    let entry = registry.lookup("m1", None).ok_or("m1 missing")?;
    assert_eq!(entry.pricing[0].cache_write_input_per_mtok, Some(1.25));
    let registry = ModelRegistry::from_yaml_str(TWO_PROVIDERS, "test.yaml")?;
    let entry = registry.lookup("gpt-4o", Some("openai")).ok_or("gpt-4o missing")?;
    assert_eq!(entry.pricing[0].cache_write_input_per_mtok, None, "optional");
    for bad in ["-1.0", ".nan", ".inf"] {
        let message = error_of(&yaml(bad));
        assert!(message.contains("`m1`") && message.contains("pricing.cache_write_input_per_mtok"), "{message}");
        assert!(message.contains("must be a finite number >= 0"), "{message}");
    }
    Ok(())
}

#[test]
fn long_context_rates_are_read_and_validated() -> TestResult {
    let yaml = |above: &str, output: &str| {
        format!(
            "models:\n  - id: m1\n    provider: anthropic\n    risk_level: low\n    pricing:\n      - effective_from: \
             2025-01-01\n        input_per_mtok: 3.0\n        output_per_mtok: 15.0\n        long_context: \
             {{above_input_tokens: {above}, input_per_mtok: 6.0, output_per_mtok: {output}}}\n"
        )
    };
    let registry = ModelRegistry::from_yaml_str(&yaml("200000", "22.5"), "test.yaml")?;
    let long = registry.lookup("m1", None).and_then(|e| e.pricing[0].long_context.as_ref()).ok_or("no tier")?;
    assert_eq!((long.above_input_tokens, long.input_per_mtok, long.output_per_mtok), (200_000, 6.0, 22.5));
    assert_eq!(long.cached_input_per_mtok, None, "optional");
    for (above, output, key, problem) in [
        ("0", "22.5", "pricing.long_context.above_input_tokens", "must be a positive number of input tokens"),
        ("-5", "22.5", "pricing.long_context.above_input_tokens", "must be a positive number of input tokens"),
        ("200000", "-1.0", "pricing.long_context.output_per_mtok", "must be a finite number >= 0"),
        ("200000", ".nan", "pricing.long_context.output_per_mtok", "must be a finite number >= 0"),
    ] {
        let message = error_of(&yaml(above, output));
        assert!(message.contains("`m1`") && message.contains(key) && message.contains(problem), "{message}");
    }
    Ok(())
}

#[test]
fn service_tier_rates_are_read_and_validated() -> TestResult {
    let yaml = |tiers: &str| {
        format!(
            "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n    pricing:\n      - effective_from: \
             2025-01-01\n        input_per_mtok: 2.0\n        output_per_mtok: 8.0\n        service_tiers: {tiers}\n"
        )
    };
    let registry =
        ModelRegistry::from_yaml_str(&yaml("{flex: {input_per_mtok: 1.0, output_per_mtok: 4.0}}"), "t.yaml")?;
    let flex = registry.lookup("m1", None).and_then(|e| e.pricing[0].service_tiers.get("flex")).ok_or("no tier")?;
    assert_eq!((flex.input_per_mtok, flex.output_per_mtok, flex.cached_input_per_mtok), (1.0, 4.0, None));
    assert_eq!(flex.version, "m1@2025-01-01+flex");
    for (tiers, key, problem) in [
        ("{flex: {input_per_mtok: 1.0, output_per_mtok: -4.0}}", "pricing.service_tiers.output_per_mtok", ">= 0"),
        ("{Flex: {input_per_mtok: 1.0, output_per_mtok: 4.0}}", "pricing.service_tiers", "in lower case"),
        ("{default: {input_per_mtok: 1.0, output_per_mtok: 4.0}}", "pricing.service_tiers", "the standard tier"),
        ("{'': {input_per_mtok: 1.0, output_per_mtok: 4.0}}", "pricing.service_tiers", "an empty name"),
        ("{flex: {input_per_mtok: 1.0}}", "", "output_per_mtok"),
    ] {
        let message = error_of(&yaml(tiers));
        assert!(message.contains("m1") && message.contains(key) && message.contains(problem), "{tiers}: {message}");
    }
    Ok(())
}

/// A newer price that leaves out a tier the one before it listed is named (the loader warns);
/// the shipped registry has none.
#[test]
fn tiers_a_newer_price_leaves_out_are_named() -> TestResult {
    let yaml = "models:\n  - id: m1\n    provider: openai\n    risk_level: low\n    pricing:\n      - {effective_from: \
                2025-01-01, input_per_mtok: 2.0, output_per_mtok: 8.0, service_tiers: {flex: {input_per_mtok: 1.0, \
                output_per_mtok: 4.0}, priority: {input_per_mtok: 3.5, output_per_mtok: 14.0}}}\n      - \
                {effective_from: 2025-06-01, input_per_mtok: 1.0, output_per_mtok: 4.0, service_tiers: {priority: \
                {input_per_mtok: 1.75, output_per_mtok: 7.0}}}\n";
    let registry = ModelRegistry::from_yaml_str(yaml, "t.yaml")?;
    let entry = registry.lookup("m1", None).ok_or("m1")?;
    assert_eq!(tiers_left_out(&entry.pricing), vec![("flex", "m1@2025-06-01")]);
    let shipped = ModelRegistry::default_embedded()?;
    for entry in shipped.entries() {
        assert_eq!(tiers_left_out(&entry.pricing), vec![], "{}", entry.id);
    }
    Ok(())
}

/// Anthropic bills tokens written to its prompt cache (5-minute cache) at 1.25 times the input
/// price, on its own API and on Bedrock and Vertex AI alike.
#[test]
fn embedded_claude_prices_charge_cache_writes_a_quarter_above_input() -> TestResult {
    let registry = ModelRegistry::default_embedded()?;
    let claude: Vec<&ModelEntry> = registry.entries().filter(|e| e.id.contains("claude")).collect();
    assert!(claude.len() >= 3, "{claude:?}");
    for entry in claude {
        for price in &entry.pricing {
            let write =
                price.cache_write_input_per_mtok.ok_or_else(|| format!("{} has no cache-write price", entry.id))?;
            assert!(
                (write - 1.25 * price.input_per_mtok).abs() < 1e-9,
                "{}: {write} for input {}",
                entry.id,
                price.input_per_mtok
            );
        }
    }
    Ok(())
}

#[test]
fn from_path_reads_and_reports_missing_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("models.yaml");
    std::fs::write(&path, TWO_PROVIDERS)?;
    assert_eq!(ModelRegistry::from_path(&path)?.entries().count(), 3);
    let missing = dir.path().join("nope.yaml");
    let message = ModelRegistry::from_path(&missing).err().ok_or("loaded a missing file")?.to_string();
    assert!(message.contains("nope.yaml"), "{message}");
    Ok(())
}

#[test]
fn two_prices_of_one_day_have_distinct_versions() -> TestResult {
    let yaml = "models:\n  - id: m\n    provider: openai\n    risk_level: low\n    pricing:\n      \
                - {effective_from: 2024-01-01T00:00:00Z, input_per_mtok: 1.0, output_per_mtok: 1.0}\n      \
                - {effective_from: 2024-01-01T12:00:00Z, input_per_mtok: 2.0, output_per_mtok: 2.0}\n";
    let registry = ModelRegistry::from_yaml_str(yaml, "test.yaml")?;
    let versions: Vec<&str> = registry.entries().flat_map(|e| &e.pricing).map(|p| p.version.as_str()).collect();
    assert_eq!(versions, ["m@2024-01-01", "m@2024-01-01T12:00:00Z"]);
    Ok(())
}

#[test]
fn a_short_number_after_a_name_is_another_model_not_its_snapshot() -> TestResult {
    // Opus 4.1 and 4.5 are other models (4.5 costs a third of Opus 4): priced as the stem they
    // were mis-costed and looked registered to governance. Unregistered, they are reported as
    // unknown models instead.
    let stem = format!("models:\n  - id: claude-opus-4\n    provider: anthropic\n    risk_level: high\n{PRICE}");
    let registry = ModelRegistry::from_yaml_str(&stem, "test.yaml")?;
    for model in [
        "claude-opus-4-1",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-opus-4-1@20250805",
        "claude-opus-4-5-v1:0",
        "claude-opus-4-05",
        "claude-opus-4-1-latest",
    ] {
        assert_eq!(found(&registry, model, None), None, "{model}");
    }
    // Its own snapshots still resolve: a date, 3+ digits, `vN`, `latest`.
    for model in [
        "claude-opus-4-20250514",
        "claude-opus-4@20250514",
        "claude-opus-4-2025-05-14",
        "claude-opus-4-20250514-v1:0",
        "claude-opus-4-v1:0",
        "claude-opus-4-001",
        "claude-opus-4-latest",
    ] {
        assert_eq!(found(&registry, model, None), Some("claude-opus-4"), "{model}");
    }

    let both = format!("{stem}  - id: claude-opus-4-5\n    provider: anthropic\n    risk_level: high\n{PRICE}");
    let registry = ModelRegistry::from_yaml_str(&both, "test.yaml")?;
    assert_eq!(found(&registry, "claude-opus-4-5-20251101", None), Some("claude-opus-4-5"));
    assert_eq!(found(&registry, "claude-opus-4-5@20251101", Some("anthropic")), Some("claude-opus-4-5"));
    assert_eq!(found(&registry, "claude-opus-4-1-20250805", None), None);
    Ok(())
}

#[test]
fn provider_snapshot_conventions_resolve_to_their_model() -> TestResult {
    let yaml = format!(
        "models:\n  - id: command-r\n    provider: cohere\n    risk_level: low\n{PRICE}  \
         - id: gemini-1.5-pro\n    provider: gcp.vertex_ai\n    risk_level: low\n{PRICE}  \
         - id: mistral-large\n    provider: mistral_ai\n    risk_level: low\n{PRICE}  \
         - id: gpt-4\n    provider: openai\n    risk_level: low\n{PRICE}"
    );
    let registry = ModelRegistry::from_yaml_str(&yaml, "test.yaml")?;
    for (model, id) in [
        // Cohere: month then year.
        ("command-r-08-2024", Some("command-r")),
        ("command-r-12-2024", Some("command-r")),
        // Not a month, or not followed by a year: another model.
        ("command-r-13-2024", None),
        ("command-r-08", None),
        ("command-r-08-24", None),
        ("command-r7b-12-2024", None),
        ("gemini-1.5-pro-002", Some("gemini-1.5-pro")),
        ("mistral-large-2411", Some("mistral-large")),
        ("gpt-4-0613", Some("gpt-4")),
        ("gpt-4-1106-preview", None),
        ("gpt-4-32k-0613", None),
    ] {
        assert_eq!(found(&registry, model, None), id, "{model}");
    }
    Ok(())
}

#[test]
fn an_empty_model_list_is_refused() {
    let message = error_of("models: []\n");
    assert!(message.contains("bad.yaml") && message.contains("`models` is empty"), "{message}");
}

#[test]
fn names_with_whitespace_that_no_event_would_match_are_refused() {
    for (id, provider, aliases, key) in [
        (" gpt-4o", "openai", "[]", "key `id`"),
        ("gpt-4o ", "openai", "[]", "key `id`"),
        ("gpt 4o", "openai", "[]", "key `id`"),
        ("gpt-4o", "open ai", "[]", "key `provider`"),
        ("gpt-4o", "openai", "[\"gpt 4o\"]", "key `aliases`"),
        ("gpt-4o", "openai", "[\"\"]", "key `aliases`"),
    ] {
        let yaml = format!(
            "models:\n  - id: {id:?}\n    provider: {provider:?}\n    aliases: {aliases}\n    risk_level: low\n{PRICE}"
        );
        let message = error_of(&yaml);
        assert!(message.contains(key), "{id:?} {provider:?} {aliases}: {message}");
    }
}

#[test]
fn prices_that_differ_by_a_fraction_of_a_second_have_distinct_versions() -> TestResult {
    let yaml = "models:\n  - id: m\n    provider: openai\n    risk_level: low\n    pricing:\n      \
                - {effective_from: \"2024-01-01T12:00:00.25Z\", input_per_mtok: 1.0, output_per_mtok: 1.0}\n      \
                - {effective_from: \"2024-01-01T12:00:00.5Z\", input_per_mtok: 2.0, output_per_mtok: 2.0}\n      \
                - {effective_from: \"2024-01-01T12:00:01Z\", input_per_mtok: 3.0, output_per_mtok: 3.0}\n";
    let registry = ModelRegistry::from_yaml_str(yaml, "test.yaml")?;
    let versions: Vec<&str> = registry.entries().flat_map(|e| &e.pricing).map(|p| p.version.as_str()).collect();
    assert_eq!(versions, ["m@2024-01-01T12:00:00.250Z", "m@2024-01-01T12:00:00.500Z", "m@2024-01-01T12:00:01Z"]);
    Ok(())
}
