//! Binary payloads in retained content, elided.
//!
//! Message lists carry images, audio and documents inline as base64: the conventions' `blob`
//! parts (`{"type":"blob","content":"iVBORw0..."}`), OpenAI's data URLs
//! (`data:image/png;base64,...`) and `input_audio` data. The PII scrubber reads text, and an ID
//! card's scan or a recorded call is personal data it cannot see into; it also makes retained
//! content megabytes where the text is a few hundred bytes. So before retained content is
//! scrubbed, every run of [`BLOB_RUN_BYTES`] or more base64 characters is replaced by
//! `[BLOB <n> bytes]`, `n` being the size it decodes to. Prose never holds such a run (words are
//! short and spaced), and a hex or base64 secret that long is better masked anyway.

use std::borrow::Cow;

/// The shortest run of base64 characters taken for a binary payload: about 190 bytes decoded.
pub const BLOB_RUN_BYTES: usize = 256;

fn is_base64(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// `text` with each run of at least [`BLOB_RUN_BYTES`] base64 characters (and its `=` padding)
/// replaced by `[BLOB <n> bytes]`; borrowed when it holds none. One pass, linear in the text.
pub fn elide_blobs(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if !is_base64(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_base64(bytes[at]) {
            at += 1;
        }
        let digits = at - start;
        while at < bytes.len() && bytes[at] == b'=' && at - start - digits < 2 {
            at += 1;
        }
        if digits >= BLOB_RUN_BYTES {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len().min(4096)));
            // Runs are ASCII, so both ends are character boundaries.
            out.push_str(&text[copied..start]);
            out.push_str(&format!("[BLOB {} bytes]", digits * 3 / 4));
            copied = at;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_base64_runs_become_their_size_and_the_rest_is_kept() {
        let png = "iVBORw0KGgo".repeat(40); // 440 characters
        let parts = format!(
            r#"[{{"role":"user","parts":[{{"type":"text","content":"Read my ID"}},{{"type":"blob","mime_type":"image/png","content":"{png}=="}}]}}]"#
        );
        let elided = elide_blobs(&parts);
        assert_eq!(
            elided,
            r#"[{"role":"user","parts":[{"type":"text","content":"Read my ID"},{"type":"blob","mime_type":"image/png","content":"[BLOB 330 bytes]"}]}]"#
        );
        let url = format!("see data:image/jpeg;base64,{png} please");
        assert_eq!(elide_blobs(&url), "see data:image/jpeg;base64,[BLOB 330 bytes] please");
    }

    #[test]
    fn text_and_short_runs_are_borrowed_unchanged() {
        let prose = "The quick brown fox. ".repeat(100);
        assert!(matches!(elide_blobs(&prose), Cow::Borrowed(_)));
        let hash = "a".repeat(BLOB_RUN_BYTES - 1);
        assert!(matches!(elide_blobs(&hash), Cow::Borrowed(_)));
        assert_eq!(elide_blobs(&"a".repeat(BLOB_RUN_BYTES)), "[BLOB 192 bytes]");
        assert!(matches!(elide_blobs("über ✓ 日本語"), Cow::Borrowed(_)));
    }
}
