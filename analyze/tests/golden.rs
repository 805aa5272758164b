//! Golden files (STYLE 14): the fleet summary of a fixed lake, as JSON, must
//! match `testdata/summary.golden.json`. Regenerate on purpose with
//! `DRIFTWATCH_UPDATE_GOLDEN=1 cargo test -p driftwatch-analyze --test golden`.

mod common;

use std::path::PathBuf;

use common::{TestResult, write_fixture_lake};
use driftwatch_analyze::{AppSummary, LakeSession, LakeTotals, app_summary, lake_totals};
use serde::Serialize;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// Compare `actual` with the golden file, or rewrite it when asked to.
fn check_golden(name: &str, actual: &str) -> TestResult {
    let path = golden_path(name);
    if std::env::var_os("DRIFTWATCH_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual)?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).map_err(|e| {
        format!("cannot read {} ({e}); run with DRIFTWATCH_UPDATE_GOLDEN=1 to create it", path.display())
    })?;
    // A panic rather than an Err so the diff prints as text, not as an escaped Debug string.
    assert!(
        expected == actual,
        "{} differs from the output (rerun with DRIFTWATCH_UPDATE_GOLDEN=1 if the change is intended):\n{}",
        path.display(),
        line_diff(&expected, actual)
    );
    Ok(())
}

/// The changed lines of a line diff, with two lines of context around each change.
fn line_diff(expected: &str, actual: &str) -> String {
    let full: Vec<String> = full_diff(expected, actual).lines().map(str::to_owned).collect();
    let changed: Vec<bool> = full.iter().map(|line| !line.starts_with("  ")).collect();
    let near_change = |i: usize| (i.saturating_sub(2)..(i + 3).min(full.len())).any(|k| changed[k]);
    let mut out = String::new();
    let mut skipped = false;
    for (i, line) in full.iter().enumerate() {
        if near_change(i) {
            out.push_str(line);
            out.push('\n');
            skipped = false;
        } else if !skipped {
            out.push_str("  ...\n");
            skipped = true;
        }
    }
    out
}

/// A full line diff (longest common subsequence): `-` expected only, `+` actual only.
fn full_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// The golden document; a struct keeps the fields in declaration order.
#[derive(Serialize)]
struct Golden {
    app_summary: Vec<AppSummary>,
    lake_totals: LakeTotals,
}

#[tokio::test]
async fn fleet_summary_matches_golden() -> TestResult {
    let lake = tempfile::tempdir()?;
    write_fixture_lake(lake.path())?;
    let session = LakeSession::open(&lake.path().to_string_lossy(), None).await?;
    let output = Golden { app_summary: app_summary(&session).await?, lake_totals: lake_totals(&session).await? };
    let mut text = serde_json::to_string_pretty(&output)?;
    text.push('\n');
    check_golden("summary.golden.json", &text)
}

#[test]
fn diff_marks_changed_lines() {
    assert_eq!(full_diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
    assert_eq!(line_diff("1\n2\n3\n4\n5\n6\n", "1\n2\n3\n4\n5\nX\n"), "  ...\n  4\n  5\n- 6\n+ X\n");
}
