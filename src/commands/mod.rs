//! One module per subcommand.

pub mod analyze;
pub mod demo;
pub mod ingest;
pub mod loadgen;

use driftwatch_ingest::fleet::MAX_MALFORMED_RATIO;

/// `--malformed-ratio`: a share from 0 to [`MAX_MALFORMED_RATIO`].
fn parse_malformed_ratio(text: &str) -> Result<f64, String> {
    let ratio: f64 =
        text.trim().parse().map_err(|_| format!("expected a number from 0 to {MAX_MALFORMED_RATIO}, e.g. 0.01"))?;
    if !(0.0..=MAX_MALFORMED_RATIO).contains(&ratio) {
        return Err(format!(
            "must be from 0 to {MAX_MALFORMED_RATIO} (a share of all messages; at most one malformed message follows \
             each good one)"
        ));
    }
    Ok(ratio)
}

/// A count flag that must be at least 1 (`--inferences`, `--apps`).
fn parse_positive_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(count) => Ok(count),
        Err(_) => Err("expected a whole number of at least 1".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_ratios_outside_zero_to_a_half_are_refused() {
        for text in ["0", "0.01", " 0.5"] {
            assert!(parse_malformed_ratio(text).is_ok(), "{text}");
        }
        for text in ["0.51", "0.8", "1.5", "-0.1", "NaN", "inf", "", "ten"] {
            assert!(parse_malformed_ratio(text).is_err(), "{text}");
        }
    }

    #[test]
    fn counts_must_be_at_least_one() {
        assert_eq!(parse_positive_count("3"), Ok(3));
        for text in ["0", "-1", "x", ""] {
            assert!(parse_positive_count(text).is_err(), "{text}");
        }
    }
}
