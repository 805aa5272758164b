//! What the dead-letter table keeps of a rejected item or message (DESIGN §10).
//!
//! A rejected payload enters [`dead_letter_payload`] as it came: one span or log record
//! re-serialised as OTLP/JSON, the bytes of an item prost could not decode, a whole message
//! (JSON event, OTLP/JSON, OTLP protobuf, or bytes that are none of these), or the head of a
//! record too long to read. A message in a schema registry's frame is kept without the frame.
//! Three steps, in this order:
//!
//! 1. Content is masked unless [`DeadLetterContent::Keep`]: the prompt and answer text a
//!    rejected message carries would otherwise outlive the app's choice not to retain content.
//!    Each content value becomes `"[CONTENT n bytes]"`, `n` its size in the payload, so the row
//!    still tells how much there was.
//! 2. PII is masked ([`Scrubber`]), whatever the policy.
//! 3. The copy is cut to the configured size. Cut first, a card number or address the cut splits
//!    no longer matches its detector; masked first, content the cut would split is gone whole.
//!
//! # Which values are content
//! - JSON (a JSON event, OTLP/JSON, a re-serialised item, or such text cut short): the values of
//!   the JSON event fields `input` and `output`; the `value` of every OTLP attribute object whose
//!   `key` carries content ([`carries_content`]: the decoder's own content keys and those of the
//!   conventions it does not read); and every OTLP log record `body`, free text that the old
//!   `gen_ai.*.message` events fill with the message (the decoder reads feedback from attributes,
//!   never from a body). The keys are matched at any depth: a key named so is masked wherever it
//!   is (resource, span, span event, link, log record, or nested in a key-value list).
//! - OTLP protobuf that prost decodes as a traces or logs request: the same attribute values and
//!   bodies, and the request re-encoded.
//! - Bytes that are neither: see [`fill_text_runs`].

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogsData;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use crate::enrich::Scrubber;

mod content_keys;
use content_keys::carries_content;

/// Whether dead letters keep the prompt and answer text of rejected input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeadLetterContent {
    /// Replace content values with a placeholder carrying their size (content retention off).
    #[default]
    Mask,
    /// Keep content as it came, PII-scrubbed like the rest (content retention on).
    Keep,
}

/// The JSON event fields that hold prompt and answer text (`json_event`'s `input`, `output`).
const JSON_EVENT_CONTENT_FIELDS: [&[u8]; 2] = [b"input", b"output"];

/// The OTLP/JSON key of a log record's body.
const LOG_BODY_FIELD: &[u8] = b"body";

/// Deeper JSON than this is not walked: serde_json refuses beyond 128 levels, so the decoder
/// rejected it for that, and a frame per level of `[[[[...` would cost memory in proportion to
/// the payload. Such a payload is kept as [`fill_text_runs`] keeps bytes.
const MAX_JSON_DEPTH: usize = 256;

/// Bounds on how much of a compressed message is inflated for its dead letter (four times the
/// kept copy's cap, so that masking sees whole values around what is kept).
const COMPRESSED_DEAD_LETTER_MIN_BYTES: usize = 64 * 1024;
const COMPRESSED_DEAD_LETTER_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Runs of text longer than this are filled in bytes that are not JSON or protobuf.
const KEPT_TEXT_RUN_BYTES: usize = 8;

/// The copy of a rejected payload the dead-letter table keeps: content masked unless `content`
/// keeps it, then PII masked, then cut to `cap` bytes (see the module docs for the order). The
/// payload is at most `max_payload_bytes` (or a source's bounded head of a longer record), and
/// every step is linear in it.
pub(crate) fn dead_letter_payload(payload: &[u8], cap: usize, content: DeadLetterContent) -> Vec<u8> {
    // Compressed, the content would pass the masks below unseen, and inflate again for anyone
    // who reads the dead letter: what is kept is the start of the inflated message, masked (a
    // cut document is masked as bytes of no known shape), or nothing. Only the start: a small
    // frame may inflate to megabytes, and the copy keeps `cap` bytes at most anyway.
    if super::zstd_frame::is_compressed(payload) {
        let limit = cap.saturating_mul(4).clamp(COMPRESSED_DEAD_LETTER_MIN_BYTES, COMPRESSED_DEAD_LETTER_MAX_BYTES);
        return match super::zstd_frame::inflate_prefix(payload, limit) {
            Ok(inflated) => masked_copy(&inflated, cap, content),
            Err(_) => Vec::new(),
        };
    }
    masked_copy(payload, cap, content)
}

/// The copy of one rejected item of a message (a span or log record the decoder could not
/// read) that the dead-letter table keeps, as [`dead_letter_payload`], but never inflated: an
/// item inside a request is not compressed on purpose, and a message of thousands of small
/// zstd frames as items would cost an inflation each. A compressed item keeps nothing.
pub(crate) fn dead_letter_item_payload(payload: &[u8], cap: usize, content: DeadLetterContent) -> Vec<u8> {
    if super::zstd_frame::is_compressed(payload) {
        return Vec::new();
    }
    masked_copy(payload, cap, content)
}

/// Content masked unless `content` keeps it, then PII masked, then cut to `cap` bytes.
fn masked_copy(payload: &[u8], cap: usize, content: DeadLetterContent) -> Vec<u8> {
    // A registry frame's header would hide the JSON or protobuf inside from the masks below,
    // which would then mask it as bytes of no known shape: the body is kept without it.
    let payload = super::schema_registry::unframe(payload).and_then(Result::ok).unwrap_or(payload);
    let payload = match content {
        DeadLetterContent::Keep => Cow::Borrowed(payload),
        DeadLetterContent::Mask => mask_content(payload),
    };
    match Scrubber::new().scrub_bytes(&payload) {
        Cow::Borrowed(bytes) => bytes[..dead_letter_cut(bytes, cap)].to_vec(),
        Cow::Owned(mut bytes) => {
            bytes.truncate(dead_letter_cut(&bytes, cap));
            bytes
        }
    }
}

/// Where a scrubbed payload is cut: at most `cap` bytes, never inside a UTF-8 character, and
/// before a placeholder the cut would split (`[CARD_NU`), so that what is left of a mask
/// cannot be read as a value.
fn dead_letter_cut(bytes: &[u8], cap: usize) -> usize {
    /// Longer than every placeholder (`[BEARER_TOKEN]` is 14 bytes).
    const PLACEHOLDER_MAX_BYTES: usize = 24;
    if bytes.len() <= cap {
        return bytes.len();
    }
    let is_continuation = |byte: u8| byte & 0xc0 == 0x80;
    let mut cut = cap;
    // A character has at most three continuation bytes; binary payloads may have more in a row.
    while cut > cap.saturating_sub(3) && is_continuation(bytes[cut]) {
        cut -= 1;
    }
    let window = cut.saturating_sub(PLACEHOLDER_MAX_BYTES);
    if let Some(open) = bytes[window..cut].iter().rposition(|&b| b == b'[').map(|at| window + at) {
        let name_end = bytes[open + 1..].iter().position(|&b| !(b.is_ascii_uppercase() || b == b'_'));
        let split = name_end.is_some_and(|len| open + 1 + len >= cut && bytes[open + 1 + len] == b']');
        if split {
            cut = open;
        }
    }
    cut
}

/// `payload` with its content values masked, told apart as the decoder tells formats: a
/// payload starting with `{` is JSON (no protobuf request starts so); otherwise protobuf that
/// prost reads whole; otherwise JSON after whitespace; otherwise bytes of no known shape.
fn mask_content(payload: &[u8]) -> Cow<'_, [u8]> {
    let json_at = payload.iter().position(|b| !b.is_ascii_whitespace()).filter(|&at| payload[at] == b'{');
    if json_at != Some(0)
        && let Some(masked) = mask_protobuf(payload)
    {
        return Cow::Owned(masked);
    }
    if json_at.is_some() {
        return mask_json(payload).map_or_else(|| Cow::Owned(fill_text_runs(payload)), Cow::Owned);
    }
    Cow::Owned(fill_text_runs(payload))
}

/// The placeholder text of a content value `len` bytes long.
fn placeholder(len: usize) -> String {
    format!("[CONTENT {len} bytes]")
}

// ---------------------------------------------------------------------------------------------
// Protobuf

/// A traces or logs request with its content masked, re-encoded; `None` unless prost decodes
/// it as one holding at least one resource and re-encodes it to as many bytes. Prost skips
/// unknown fields, so bytes of another kind (a span's own bytes, text) can pass for a request
/// of a few empty fields; requiring the same size keeps what prost did not understand from
/// being dropped silently: such bytes are kept as [`fill_text_runs`] keeps them.
fn mask_protobuf(payload: &[u8]) -> Option<Vec<u8>> {
    if let Ok(mut traces) = TracesData::decode(payload)
        && !traces.resource_spans.is_empty()
        && traces.encoded_len() == payload.len()
    {
        for resource_spans in &mut traces.resource_spans {
            if let Some(resource) = &mut resource_spans.resource {
                mask_attributes(&mut resource.attributes);
            }
            for scope_spans in &mut resource_spans.scope_spans {
                if let Some(scope) = &mut scope_spans.scope {
                    mask_attributes(&mut scope.attributes);
                }
                for span in &mut scope_spans.spans {
                    mask_attributes(&mut span.attributes);
                    span.events.iter_mut().for_each(|event| mask_attributes(&mut event.attributes));
                    span.links.iter_mut().for_each(|link| mask_attributes(&mut link.attributes));
                }
            }
        }
        return Some(traces.encode_to_vec());
    }
    if let Ok(mut logs) = LogsData::decode(payload)
        && !logs.resource_logs.is_empty()
        && logs.encoded_len() == payload.len()
    {
        for resource_logs in &mut logs.resource_logs {
            if let Some(resource) = &mut resource_logs.resource {
                mask_attributes(&mut resource.attributes);
            }
            for scope_logs in &mut resource_logs.scope_logs {
                if let Some(scope) = &mut scope_logs.scope {
                    mask_attributes(&mut scope.attributes);
                }
                for record in &mut scope_logs.log_records {
                    mask_attributes(&mut record.attributes);
                    if let Some(body) = &mut record.body {
                        *body = masked_any_value(body);
                    }
                }
            }
        }
        return Some(logs.encode_to_vec());
    }
    None
}

/// Mask the content attributes of `list`, and those nested in its key-value list values.
/// Prost refuses messages nested deeper than 100 levels, which bounds the recursion.
fn mask_attributes(list: &mut [KeyValue]) {
    for attribute in list {
        let Some(value) = &mut attribute.value else { continue };
        if carries_content(&attribute.key) {
            *value = masked_any_value(value);
        } else {
            mask_nested(value);
        }
    }
}

fn mask_nested(value: &mut AnyValue) {
    match &mut value.value {
        Some(Value::KvlistValue(list)) => mask_attributes(&mut list.values),
        Some(Value::ArrayValue(array)) => array.values.iter_mut().for_each(mask_nested),
        _ => {}
    }
}

/// The placeholder string standing for `value`: a string's length in bytes, else the size of
/// the value's encoding.
fn masked_any_value(value: &AnyValue) -> AnyValue {
    let len = match &value.value {
        Some(Value::StringValue(text)) => text.len(),
        _ => value.encoded_len(),
    };
    AnyValue { value: Some(Value::StringValue(placeholder(len))) }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// How a masked JSON value is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A JSON string: a JSON event's `input`.
    Str,
    /// An OTLP `AnyValue`, `{"stringValue": ...}`: an attribute's `value`, a log record's `body`.
    AnyValue,
}

/// What the value after an object key is, for masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Content(Shape),
    /// An OTLP attribute's `key`: it names whether the object's `value` is content.
    AttributeKey,
    /// An OTLP attribute's `value`.
    AttributeValue,
    /// An `AnyValue`'s string: its length is what the placeholder of the `AnyValue` gives.
    StringValue,
}

/// One open object or array.
#[derive(Debug)]
struct Frame {
    /// Where the container starts (its `{` or `[`).
    start: usize,
    object: bool,
    /// In an object: the next string is a key (after `{` or `,`).
    expect_key: bool,
    /// In an object: what the value after the last key is.
    role: Role,
    /// This object's `key` names a content attribute.
    content_attribute: bool,
    /// Where this object's `value` is and its content length, once seen (it may come before
    /// the `key`).
    attribute_value: Option<Masked>,
    /// The length of this object's `stringValue`, when it is an `AnyValue` holding a string.
    string_value_len: Option<usize>,
}

/// One value to replace: `start..end` of the payload, `len` bytes of content.
#[derive(Debug, Clone, Copy)]
struct Masked {
    start: usize,
    end: usize,
    len: usize,
    shape: Shape,
}

/// A JSON value just read: its span and, for a string, where its text is.
#[derive(Debug, Clone, Copy)]
struct Read {
    start: usize,
    end: usize,
    /// A string's text, without its quotes (to the end of the payload when unterminated).
    text: Option<(usize, usize)>,
    /// The size a placeholder gives: a string's text, an `AnyValue`'s string, else the bytes.
    len: usize,
}

impl Read {
    fn scalar(start: usize, end: usize) -> Self {
        Read { start, end, text: None, len: end - start }
    }

    /// A container that ends at `end`.
    fn container(frame: &Frame, end: usize) -> Self {
        Read { start: frame.start, end, text: None, len: frame.string_value_len.unwrap_or(end - frame.start) }
    }
}

/// `payload`, JSON or JSON cut short or broken, with its content values replaced; `None` when
/// it nests deeper than [`MAX_JSON_DEPTH`].
///
/// One pass over the bytes, never parsing: a string runs to its first unescaped quote (or the
/// end), containers are tracked on a stack, and any other run of bytes is a scalar. Malformed
/// text is read leniently: a missing `:` or `,` changes nothing, unquoted words are one key or
/// value, and a content value cut short by the end of the payload (an unterminated string, an
/// unclosed array) is masked to the end. So a payload that does not parse loses its content as
/// one that does, in time linear in its size: each byte is looked at once, each key resolved
/// once.
fn mask_json(payload: &[u8]) -> Option<Vec<u8>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut masks: Vec<Masked> = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let byte = payload[at];
        match byte {
            b'{' | b'[' => {
                if stack.len() >= MAX_JSON_DEPTH {
                    return None;
                }
                let object = byte == b'{';
                stack.push(Frame {
                    start: at,
                    object,
                    expect_key: object,
                    role: Role::Other,
                    content_attribute: false,
                    attribute_value: None,
                    string_value_len: None,
                });
                at += 1;
            }
            b'}' | b']' => {
                at += 1;
                if let Some(frame) = stack.pop() {
                    let read = Read::container(&frame, at);
                    close_attribute(&frame, &mut masks);
                    on_value(&mut stack, read, payload, &mut masks);
                }
            }
            b',' => {
                if let Some(frame) = stack.last_mut() {
                    frame.expect_key = frame.object;
                    frame.role = Role::Other;
                }
                at += 1;
            }
            b':' => at += 1,
            b'"' => {
                let read = read_string(payload, at);
                at = read.end;
                match stack.last_mut() {
                    Some(frame) if frame.object && frame.expect_key => {
                        frame.expect_key = false;
                        frame.role = role_of_key(text_of(payload, read));
                    }
                    _ => on_value(&mut stack, read, payload, &mut masks),
                }
            }
            _ if byte.is_ascii_whitespace() => at += 1,
            _ => {
                // A scalar runs to the next structural byte, so that unquoted words are one value.
                let next =
                    payload[at..].iter().position(|b| b"{}[],:\"".contains(b)).map_or(payload.len(), |len| at + len);
                let end = at + payload[at..next].trim_ascii_end().len();
                match stack.last_mut() {
                    // An unquoted key.
                    Some(frame) if frame.object && frame.expect_key => {
                        frame.expect_key = false;
                        frame.role = role_of_key(&payload[at..end]);
                    }
                    _ => on_value(&mut stack, Read::scalar(at, end), payload, &mut masks),
                }
                at = next;
            }
        }
    }
    // Containers the payload leaves open end with it.
    while let Some(frame) = stack.pop() {
        close_attribute(&frame, &mut masks);
        on_value(&mut stack, Read::container(&frame, payload.len()), payload, &mut masks);
    }
    Some(apply(payload, masks))
}

/// The string starting with the quote at `start`: up to its first unescaped quote, or to the
/// end of the payload.
fn read_string(payload: &[u8], start: usize) -> Read {
    let mut at = start + 1;
    while at < payload.len() {
        match payload[at] {
            b'\\' => at += 2,
            b'"' => return Read { start, end: at + 1, text: Some((start + 1, at)), len: at - start - 1 },
            _ => at += 1,
        }
    }
    Read { start, end: payload.len(), text: Some((start + 1, payload.len())), len: payload.len() - start - 1 }
}

fn text_of(payload: &[u8], read: Read) -> &[u8] {
    read.text.map_or(&[][..], |(start, end)| &payload[start..end])
}

/// A string's text with its escapes resolved, so that `"\u0069nput"` is `input` as serde reads
/// it. Only short strings are resolved: every key this module looks for is short.
fn unescaped(raw: &[u8]) -> Option<Cow<'_, str>> {
    /// Longer than any content key written with every character escaped.
    const MAX_KEY_BYTES: usize = 1024;
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    if raw.len() > MAX_KEY_BYTES {
        return None;
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).ok().map(Cow::Owned)
}

fn role_of_key(raw: &[u8]) -> Role {
    let Some(key) = unescaped(raw) else { return Role::Other };
    let key = key.as_bytes();
    if JSON_EVENT_CONTENT_FIELDS.contains(&key) {
        Role::Content(Shape::Str)
    } else if key == LOG_BODY_FIELD {
        Role::Content(Shape::AnyValue)
    } else if key == b"key" {
        Role::AttributeKey
    } else if key == b"value" {
        Role::AttributeValue
    } else if key == b"stringValue" {
        Role::StringValue
    } else {
        Role::Other
    }
}

/// A value read inside the innermost open container.
fn on_value(stack: &mut [Frame], read: Read, payload: &[u8], masks: &mut Vec<Masked>) {
    let Some(frame) = stack.last_mut() else { return };
    if !frame.object {
        return;
    }
    // After a value comes a key, `,` or not.
    frame.expect_key = true;
    match std::mem::replace(&mut frame.role, Role::Other) {
        Role::Content(shape) => masks.push(masked(read, shape)),
        Role::AttributeKey => {
            let names_content =
                read.text.is_some() && unescaped(text_of(payload, read)).is_some_and(|key| carries_content(&key));
            frame.content_attribute |= names_content;
        }
        Role::AttributeValue => frame.attribute_value = Some(masked(read, Shape::AnyValue)),
        Role::StringValue => frame.string_value_len = read.text.map(|_| read.len),
        Role::Other => {}
    }
}

/// An attribute object ends: its `value` is masked when its `key` names content, whichever of
/// the two came first.
fn close_attribute(frame: &Frame, masks: &mut Vec<Masked>) {
    if frame.content_attribute
        && let Some(value) = frame.attribute_value
    {
        masks.push(value);
    }
}

fn masked(read: Read, shape: Shape) -> Masked {
    Masked { start: read.start, end: read.end, len: read.len, shape }
}

/// `payload` with every outermost masked range replaced by its placeholder.
fn apply(payload: &[u8], mut masks: Vec<Masked>) -> Vec<u8> {
    // Ranges nest or are apart: sorted by start, outer before inner, an inner one is skipped.
    masks.sort_unstable_by_key(|mask| (mask.start, std::cmp::Reverse(mask.end)));
    let mut out = Vec::with_capacity(payload.len());
    let mut copied = 0;
    for mask in masks {
        if mask.start < copied {
            continue;
        }
        out.extend_from_slice(&payload[copied..mask.start]);
        let text = placeholder(mask.len);
        match mask.shape {
            Shape::Str => out.extend_from_slice(format!("\"{text}\"").as_bytes()),
            Shape::AnyValue => out.extend_from_slice(format!("{{\"stringValue\":\"{text}\"}}").as_bytes()),
        }
        copied = mask.end;
    }
    out.extend_from_slice(&payload[copied..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Neither

/// Bytes that are neither JSON nor a protobuf request prost reads whole: protobuf that does not
/// decode (a span with a name that is not UTF-8, a message with bytes appended), or text of no
/// known format. They cannot be walked field by field, so every run of more than
/// [`KEPT_TEXT_RUN_BYTES`] bytes of text (printable UTF-8) is filled with `*`, byte for byte.
///
/// Why this and not a head of the bytes: what tells why protobuf did not decode is its
/// structure (tags, lengths, the offset of the bad byte), which this keeps whole and in place,
/// while prompt and answer text, which is long text, is gone wherever it is; a head would keep
/// the text it holds and lose the offset. Eight bytes are too few to hold a prompt; they keep
/// the short strings (ids, enum-like values) and the binary around them.
fn fill_text_runs(payload: &[u8]) -> Vec<u8> {
    let mut out = payload.to_vec();
    let mut run_start = None;
    let mut at = 0;
    let close_run = |out: &mut Vec<u8>, run_start: &mut Option<usize>, end: usize| {
        if let Some(start) = run_start.take()
            && end - start > KEPT_TEXT_RUN_BYTES
        {
            out[start..end].fill(b'*');
        }
    };
    for chunk in payload.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                close_run(&mut out, &mut run_start, at);
            } else if run_start.is_none() {
                run_start = Some(at);
            }
            at += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            close_run(&mut out, &mut run_start, at);
            at += chunk.invalid().len();
        }
    }
    close_run(&mut out, &mut run_start, at);
    out
}

#[cfg(test)]
mod tests;
