//! Plain-text rendering of the fleet summary for the CLI and the demo.

use std::fmt::Write as _;

use super::{AppSummary, LakeTotals};

const HEADERS: [&str; 13] = [
    "app",
    "requests",
    "errors",
    "error%",
    "in_tokens",
    "out_tokens",
    "cost_usd",
    "unpriced",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "halluc%",
    "down%",
];

/// What the table's less obvious columns mean, printed under it.
const LEGEND: &str = "unpriced: calls whose spend is missing from cost_usd (no price for their model, or no token \
counts reported)\nhalluc%, down%: share of the hallucination and user_thumbs verdicts that flag one";

/// An aligned text table, one line per app (app left-aligned, numbers right-aligned);
/// `-` marks a value with no data behind it.
pub fn render_summary_table(rows: &[AppSummary]) -> String {
    let cells: Vec<[String; 13]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_line(&mut out, &HEADERS.map(str::to_owned), &widths);
    let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    out.push_str(rule.join("  ").as_str());
    out.push('\n');
    for row in &cells {
        push_line(&mut out, row, &widths);
    }
    out
}

fn push_line(out: &mut String, cells: &[String; 13], widths: &[usize; 13]) {
    let mut line = String::new();
    for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if column > 0 {
            line.push_str("  ");
        }
        // Writing to a String cannot fail.
        let _ = if column == 0 { write!(line, "{cell:<width$}") } else { write!(line, "{cell:>width$}") };
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A cost to four decimals, or to three significant digits below a cent, so an app that spends
/// fractions of a cent (a cheap model, a small fleet) does not show as 0.0000.
fn dollars(cost: f64) -> String {
    if cost <= 0.0 || cost >= 0.01 || !cost.is_finite() {
        return format!("{cost:.4}");
    }
    // Below a cent, -log10 is above 2; the cast takes its whole part, at most 10 digits shown.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = ((-cost.log10()).floor() as usize + 3).min(10);
    format!("{cost:.decimals$}")
}

fn cells(row: &AppSummary) -> [String; 13] {
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let percent = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}", v * 100.0));
    #[allow(clippy::cast_precision_loss)] // display only
    let error_rate = (row.requests > 0).then(|| row.errors as f64 / row.requests as f64);
    [
        row.app.clone(),
        row.requests.to_string(),
        row.errors.to_string(),
        percent(error_rate),
        row.input_tokens.to_string(),
        row.output_tokens.to_string(),
        dollars(row.cost_usd),
        (row.unpriced_requests + row.no_usage_requests).to_string(),
        ms(row.p50_latency_ms),
        ms(row.p95_latency_ms),
        ms(row.p99_latency_ms),
        percent(row.hallucination_rate),
        percent(row.thumbs_down_rate),
    ]
}

/// The lines printed under the table: what its columns mean, the lake's row counts, and, when
/// producer retries left one call in the lake more than once, which figures count the copies.
pub fn render_summary_notes(totals: &LakeTotals) -> String {
    let mut out = format!(
        "{LEGEND}\nlake: {} event rows ({} distinct), {} feedback rows, {} rollup rows, {} dead letters\n",
        totals.events, totals.distinct_events, totals.feedback, totals.rollup_rows, totals.dead_letters
    );
    for (reason, count) in &totals.dead_letters_by_reason {
        let _ = writeln!(out, "  dead letter {reason}: {count}");
    }
    if totals.events > totals.distinct_events {
        let _ = writeln!(
            out,
            "note: {} event rows are further copies of a call (producer retries the daemon did not drop): \
             requests, tokens and cost count each call once, latency percentiles and verdict rates (from \
             the rollups) count every copy",
            totals.events - totals.distinct_events
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, requests: i64, cost_usd: f64, p50: Option<f64>) -> AppSummary {
        AppSummary {
            app: app.to_owned(),
            requests,
            errors: requests / 4,
            input_tokens: requests * 100,
            output_tokens: requests * 20,
            cost_usd,
            unpriced_requests: i64::from(cost_usd == 0.0),
            no_usage_requests: 1,
            p50_latency_ms: p50,
            p95_latency_ms: p50.map(|v| v * 2.0),
            p99_latency_ms: p50.map(|v| v * 3.0),
            p50_ttft_ms: None,
            p95_ttft_ms: None,
            hallucination_evals: 4,
            hallucination_flagged: 1,
            hallucination_rate: Some(0.25),
            thumbs_evals: 5,
            thumbs_down: 2,
            thumbs_down_rate: Some(0.4),
            feedback: 9,
        }
    }

    #[test]
    fn columns_line_up_and_missing_values_show_a_dash() {
        let table = render_summary_table(&[row("support-bot", 1200, 12.5, Some(850.25)), row("sql", 8, 0.0, None)]);
        let expected = "\
app          requests  errors  error%  in_tokens  out_tokens  cost_usd  unpriced  p50_ms  p95_ms  p99_ms  halluc%  down%
-----------  --------  ------  ------  ---------  ----------  --------  --------  ------  ------  ------  -------  -----
support-bot      1200     300    25.0     120000       24000   12.5000         1   850.2  1700.5  2550.8     25.0   40.0
sql                 8       2    25.0        800         160    0.0000         2       -       -       -     25.0   40.0
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn costs_below_a_cent_keep_three_significant_digits() {
        let shown: Vec<String> = [0.0, 12.5, 0.01, 0.0034, 0.000425, 0.000_000_4, 1e-15].map(dollars).into();
        assert_eq!(shown, ["0.0000", "12.5000", "0.0100", "0.00340", "0.000425", "0.000000400", "0.0000000000"]);
    }

    #[test]
    fn notes_say_which_figures_count_retried_copies() {
        let mut totals = LakeTotals { events: 30, distinct_events: 30, ..LakeTotals::default() };
        assert!(!render_summary_notes(&totals).contains("note:"));
        totals.events = 40;
        let notes = render_summary_notes(&totals);
        assert!(notes.contains("lake: 40 event rows (30 distinct)"), "{notes}");
        assert!(notes.contains("note: 10 event rows are further copies"), "{notes}");
    }

    #[test]
    fn empty_fleet_renders_only_the_header() {
        assert_eq!(render_summary_table(&[]).lines().count(), 2);
    }
}
