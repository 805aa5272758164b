//! The registry's OpenMetrics text rewritten as Prometheus's classic text format (version
//! 0.0.4), for scrapers and tools that ask for it or send no preference: `promtool check
//! metrics`, `curl`, agents that predate OpenMetrics.
//!
//! prometheus-client writes OpenMetrics only. The two formats share their sample lines; they
//! differ in the family lines around them:
//!
//! - a counter's family is named without `_total` in OpenMetrics (`# TYPE x counter`, samples
//!   `x_total`) and with it in the classic format (`# TYPE x_total counter`);
//! - an info family (`# TYPE x info`, sample `x_info{..} 1`) is a gauge named `x_info`;
//! - `# UNIT` lines and the closing `# EOF` do not exist in the classic format, nor do
//!   exemplars (`# {..} value` after a sample) and the `unknown`, `stateset` and
//!   `gaugehistogram` types, which are `untyped` there;
//! - OpenMetrics escapes `"` in HELP text, the classic format does not.
//!
//! Label values are escaped alike in both, so sample lines pass through unchanged.

/// Content type of the classic text exposition.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a request's `Accept` header asks for OpenMetrics. Prometheus sends it (with the
/// classic format as a lower-quality fallback); anything else, or no header, gets the classic
/// format, as the Prometheus client libraries answer.
pub fn accepts_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

/// `openmetrics` (as prometheus-client encodes it) in the classic text format.
pub fn from_openmetrics(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE in OpenMetrics, and its family name depends on the type: it is
    // held until the TYPE line says how to name it.
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (family, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((_, text)) = pending_help.take().filter(|(help_name, _)| *help_name == name) {
                out.push_str("# HELP ");
                out.push_str(&family);
                out.push(' ');
                out.push_str(&text.replace("\\\"", "\""));
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(&family);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if line.starts_with('#') || line.is_empty() {
            // `# UNIT`, `# EOF` and any other comment.
        } else {
            out.push_str(without_exemplar(line));
            out.push('\n');
        }
    }
    out
}

/// A sample line without its exemplar: ` # ` can only start one outside the quoted label
/// values.
fn without_exemplar(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, byte) in line.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'#' if !in_quotes && index > 0 && line.as_bytes()[index - 1] == b' ' => {
                return line[..index].trim_end();
            }
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENMETRICS: &str = "# HELP driftwatch_requests Inference calls.\n\
# TYPE driftwatch_requests counter\n\
driftwatch_requests_total{app=\"a # b\",model=\"m\"} 3\n\
# HELP driftwatch_build Build \\\"facts\\\".\n\
# TYPE driftwatch_build info\n\
driftwatch_build_info{version=\"0.1.0\"} 1\n\
# HELP driftwatch_flush_duration_seconds Seconds a flush took.\n\
# TYPE driftwatch_flush_duration_seconds histogram\n\
# UNIT driftwatch_flush_duration_seconds seconds\n\
driftwatch_flush_duration_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"abc\"} 0.5\n\
driftwatch_flush_duration_seconds_sum 0.75\n\
driftwatch_flush_duration_seconds_count 2\n\
# HELP driftwatch_buffered_rows Rows.\n\
# TYPE driftwatch_buffered_rows gauge\n\
driftwatch_buffered_rows 0\n\
# TYPE driftwatch_mystery unknown\n\
driftwatch_mystery 1\n\
# EOF\n";

    #[test]
    fn families_are_renamed_and_openmetrics_only_lines_dropped() {
        let expected = "# HELP driftwatch_requests_total Inference calls.\n\
# TYPE driftwatch_requests_total counter\n\
driftwatch_requests_total{app=\"a # b\",model=\"m\"} 3\n\
# HELP driftwatch_build_info Build \"facts\".\n\
# TYPE driftwatch_build_info gauge\n\
driftwatch_build_info{version=\"0.1.0\"} 1\n\
# HELP driftwatch_flush_duration_seconds Seconds a flush took.\n\
# TYPE driftwatch_flush_duration_seconds histogram\n\
driftwatch_flush_duration_seconds_bucket{le=\"+Inf\"} 2\n\
driftwatch_flush_duration_seconds_sum 0.75\n\
driftwatch_flush_duration_seconds_count 2\n\
# HELP driftwatch_buffered_rows Rows.\n\
# TYPE driftwatch_buffered_rows gauge\n\
driftwatch_buffered_rows 0\n\
# TYPE driftwatch_mystery untyped\n\
driftwatch_mystery 1\n";
        assert_eq!(from_openmetrics(OPENMETRICS), expected);
    }

    #[test]
    fn openmetrics_is_served_only_to_those_who_ask_for_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;\
                          q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(accepts_openmetrics(Some(prometheus)));
        assert!(accepts_openmetrics(Some("Application/OpenMetrics-Text; version=1.0.0")));
        for classic in [None, Some("*/*"), Some("text/plain;version=0.0.4"), Some("application/openmetrics-text;q=0")] {
            assert!(!accepts_openmetrics(classic), "{classic:?}");
        }
    }
}
