//! A borrowing reader for OTLP protobuf traces and logs: the hot path of `otlp_spans` and
//! `otlp_logs`.
//!
//! prost decodes an `ExportTraceServiceRequest` into owned structs, with a `String` or `Vec`
//! for every id, name, attribute key and string value. That cost more CPU per span than
//! everything the pipeline does after decoding. This reader walks the same wire format and
//! lends out slices of the message instead: each span's fields ([`WireSpan`]) or log record's
//! ([`WireLogRecord`]) and their attributes, indexed straight into an [`Attrs`] table of
//! borrowed values. Traces and logs share their outer layers (resource, scope, items), which
//! [`for_each_item`] walks for both.
//!
//! It is as strict as prost: wire types of every field the schema defines, lengths, varints,
//! and UTF-8 of every string, including those the mapping never reads (the instrumentation
//! scope, links, trace state), which it checks and drops. Unknown fields are skipped by wire
//! type, as prost skips them. Whatever this reader does not accept, including
//! the rare shapes it leaves to prost on purpose (a singular message field repeated, which
//! prost merges; a nesting deeper than [`MAX_DEPTH`]), fails with [`Malformed`], and prost
//! decides and explains: for that one span or log record when the layers around it read (so a
//! bad item is rejected alone), else for the whole message.

use super::attributes::{AttrArray, AttrValue, Attrs, Key, Unmapped};

/// The message is not one this reader accepts; prost decides (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// Result of a wire read.
pub(super) type WireResult<T> = std::result::Result<T, Malformed>;

/// Nesting of array and key-value-list attribute values this reader follows (prost allows
/// 100; OTLP attributes nest one or two levels).
const MAX_DEPTH: u32 = 16;

/// Where a mapped item (span or log record) came from, for the copy a reject keeps.
pub(super) enum Origin<'a, T> {
    /// Decoded by prost.
    Decoded(&'a T),
    /// Read in place: the item's bytes.
    Wire(&'a [u8]),
}

impl<T: prost::Message + Default + serde::Serialize> Origin<'_, T> {
    /// The item as OTLP/JSON, for the dead-letter table. Only rejects pay for it.
    pub(super) fn to_json(&self) -> Vec<u8> {
        // Serialising prost types with serde_json cannot fail (no non-string map keys); the
        // wire bytes were read once already, so prost accepts them too.
        match self {
            Origin::Decoded(item) => serde_json::to_vec(item).unwrap_or_default(),
            Origin::Wire(bytes) => {
                T::decode(*bytes).ok().and_then(|item| serde_json::to_vec(&item).ok()).unwrap_or_default()
            }
        }
    }
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32,
}

impl<'a> Field<'a> {
    fn varint(self) -> WireResult<u64> {
        match self {
            Field::Varint(value) => Ok(value),
            _ => Err(Malformed),
        }
    }

    fn fixed64(self) -> WireResult<u64> {
        match self {
            Field::Fixed64(value) => Ok(value),
            _ => Err(Malformed),
        }
    }

    fn fixed32(self) -> WireResult<()> {
        match self {
            Field::Fixed32 => Ok(()),
            _ => Err(Malformed),
        }
    }

    fn bytes(self) -> WireResult<&'a [u8]> {
        match self {
            Field::Len(bytes) => Ok(bytes),
            _ => Err(Malformed),
        }
    }

    fn string(self) -> WireResult<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Malformed)
    }
}

/// The fields of one message, in wire order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Fields { rest: message }
    }

    /// The next field number and value; `None` at the end of the message.
    #[inline]
    fn next(&mut self) -> WireResult<Option<(u32, Field<'a>)>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        // prost takes a key only within 32 bits, so field numbers up to 2^29 - 1: a field of a
        // larger number skipped here as unknown would accept a message prost rejects.
        let key = u32::try_from(self.varint()?).map_err(|_| Malformed)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Malformed);
        }
        let field = match key & 0x7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.array()?)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                Field::Len(self.take(len)?)
            }
            5 => {
                self.array::<4>()?;
                Field::Fixed32
            }
            // Groups (3, 4) are deprecated and absent from OTLP; 6 and 7 do not exist.
            _ => return Err(Malformed),
        };
        Ok(Some((number, field)))
    }

    #[inline]
    fn varint(&mut self) -> WireResult<u64> {
        // Tags, lengths of keys and short strings, small numbers: one byte, nearly always.
        match *self.rest {
            [byte, ref rest @ ..] if byte < 0x80 => {
                self.rest = rest;
                Ok(u64::from(byte))
            }
            _ => self.long_varint(),
        }
    }

    fn long_varint(&mut self) -> WireResult<u64> {
        let mut value = 0_u64;
        for (index, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                // A tenth byte may only carry the 64th bit.
                if index == 9 && byte > 1 {
                    return Err(Malformed);
                }
                self.rest = &self.rest[index + 1..];
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    #[inline]
    fn take(&mut self, len: usize) -> WireResult<&'a [u8]> {
        if len > self.rest.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> WireResult<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }
}

/// Call `each` with the bytes of every item (span or log record) of a `TracesData` /
/// `ExportTraceServiceRequest` or `LogsData` / `ExportLogsServiceRequest` message, in order,
/// together with its resource's attribute table and its instrumentation scope. Both nest
/// the same way: field 1 of the message is a resource group (resource, scope groups, schema
/// URL), field 2 of that a scope group (scope, items, schema URL). Only these outer layers fail
/// here; `each` reads the item itself, so that one bad item can be rejected without the items
/// beside it.
pub(super) fn for_each_item<'a>(
    message: &'a [u8],
    mut each: impl FnMut(&'a [u8], &Attrs<'a>, Scope<'a>) -> WireResult<()>,
) -> WireResult<()> {
    let mut top = Fields::new(message);
    while let Some((number, field)) = top.next()? {
        if number != 1 {
            continue;
        }
        let resource_group = field.bytes()?;
        // The resource may follow its items on the wire: find it first, then walk the items.
        let mut resource = None;
        let mut fields = Fields::new(resource_group);
        while let Some((number, field)) = fields.next()? {
            match number {
                1 if resource.is_none() => resource = Some(field.bytes()?),
                1 => return Err(Malformed),
                2 => {
                    field.bytes()?;
                }
                3 => {
                    field.string()?;
                }
                _ => {}
            }
        }
        let resource = match resource {
            Some(bytes) => resource_attrs(bytes)?,
            None => Attrs::default(),
        };
        let mut fields = Fields::new(resource_group);
        while let Some((number, field)) = fields.next()? {
            if number == 2 {
                scope_group(field.bytes()?, &resource, &mut each)?;
            }
        }
    }
    Ok(())
}

fn resource_attrs(resource: &[u8]) -> WireResult<Attrs<'_>> {
    let mut attrs = Attrs::default();
    let mut fields = Fields::new(resource);
    while let Some((number, field)) = fields.next()? {
        match number {
            1 => insert_key_value(&mut attrs, field.bytes()?)?,
            2 => {
                field.varint()?;
            }
            3 => check_strings(field.bytes()?, 4)?,
            _ => {}
        }
    }
    Ok(attrs)
}

/// Check a message whose fields 1 to `count` are all strings (an `EntityRef`).
fn check_strings(message: &[u8], count: u32) -> WireResult<()> {
    let mut fields = Fields::new(message);
    while let Some((number, field)) = fields.next()? {
        if (1..=count).contains(&number) {
            field.string()?;
        }
    }
    Ok(())
}

/// An item's instrumentation scope: the library that recorded it, whose name (and for a few
/// known faults, version) the mapping reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Scope<'a> {
    pub(super) name: &'a str,
    pub(super) version: &'a str,
}

/// Check an `InstrumentationScope` and return its name and version (each the last one on the
/// wire, as prost keeps it).
fn scope_fields(scope: &[u8]) -> WireResult<Scope<'_>> {
    let mut read = Scope::default();
    let mut fields = Fields::new(scope);
    while let Some((number, field)) = fields.next()? {
        match number {
            1 => read.name = field.string()?,
            2 => read.version = field.string()?,
            3 => {
                checked_key_value(field.bytes()?, 0)?;
            }
            4 => {
                field.varint()?;
            }
            _ => {}
        }
    }
    Ok(read)
}

/// Check a `Span.Link`, which the mapping does not read.
fn check_link(link: &[u8]) -> WireResult<()> {
    let mut fields = Fields::new(link);
    while let Some((number, field)) = fields.next()? {
        match number {
            1 | 2 => {
                field.bytes()?;
            }
            3 => {
                field.string()?;
            }
            4 => {
                checked_key_value(field.bytes()?, 0)?;
            }
            5 => {
                field.varint()?;
            }
            6 => field.fixed32()?,
            _ => {}
        }
    }
    Ok(())
}

fn scope_group<'a>(
    scope_group: &'a [u8],
    resource: &Attrs<'a>,
    each: &mut impl FnMut(&'a [u8], &Attrs<'a>, Scope<'a>) -> WireResult<()>,
) -> WireResult<()> {
    // The scope may follow its items on the wire, as the resource may: find it first. Repeated,
    // prost merges the messages, so the last name and version set stand.
    let mut scope = Scope::default();
    let mut fields = Fields::new(scope_group);
    while let Some((number, field)) = fields.next()? {
        match number {
            1 => {
                let read = scope_fields(field.bytes()?)?;
                if !read.name.is_empty() {
                    scope.name = read.name;
                }
                if !read.version.is_empty() {
                    scope.version = read.version;
                }
            }
            2 => {
                field.bytes()?;
            }
            3 => {
                field.string()?;
            }
            _ => {}
        }
    }
    let mut fields = Fields::new(scope_group);
    while let Some((number, field)) = fields.next()? {
        if number == 2 {
            each(field.bytes()?, resource, scope)?;
        }
    }
    Ok(())
}

/// The id fields `trace_field` and `span_field` of an item the reader did not accept, as far as
/// the item can be read, to name it in its reject.
pub(super) fn ids_of_unread_item(item: &[u8], trace_field: u32, span_field: u32) -> (&[u8], &[u8]) {
    let (mut trace_id, mut span_id) = (&[][..], &[][..]);
    let mut fields = Fields::new(item);
    while let Ok(Some((number, field))) = fields.next() {
        match (number, field) {
            (number, Field::Len(bytes)) if number == trace_field => trace_id = bytes,
            (number, Field::Len(bytes)) if number == span_field => span_id = bytes,
            _ => {}
        }
    }
    (trace_id, span_id)
}

/// The fields of one span the mapping reads, borrowed from the message.
#[derive(Debug)]
pub(super) struct WireSpan<'a> {
    /// The whole span's bytes: a reject decodes them with prost to keep a readable copy.
    pub(super) bytes: &'a [u8],
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
    /// Empty for a root span.
    pub(super) parent_span_id: &'a [u8],
    pub(super) name: &'a str,
    pub(super) start_time_unix_nano: u64,
    pub(super) end_time_unix_nano: u64,
    /// `Status.code` (0, unset, when there is no status).
    pub(super) status_code: i32,
    pub(super) status_message: &'a str,
    /// The span's own attributes.
    pub(super) attrs: Attrs<'a>,
    /// The bytes of each span event, in order; read with [`WireEvent::parse`].
    pub(super) events: Vec<&'a [u8]>,
}

impl<'a> WireSpan<'a> {
    /// Read one span (field 2 of a `ScopeSpans`).
    pub(super) fn parse(bytes: &'a [u8]) -> WireResult<Self> {
        let mut span = WireSpan {
            bytes,
            trace_id: &[],
            span_id: &[],
            parent_span_id: &[],
            name: "",
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            status_code: 0,
            status_message: "",
            attrs: Attrs::default(),
            events: Vec::new(),
        };
        let mut has_status = false;
        let mut fields = Fields::new(bytes);
        while let Some((number, field)) = fields.next()? {
            match number {
                1 => span.trace_id = field.bytes()?,
                2 => span.span_id = field.bytes()?,
                // trace_state and links: checked, not read.
                3 => {
                    field.string()?;
                }
                4 => span.parent_span_id = field.bytes()?,
                13 => check_link(field.bytes()?)?,
                5 => span.name = field.string()?,
                // kind and the dropped counts.
                6 | 10 | 12 | 14 => {
                    field.varint()?;
                }
                7 => span.start_time_unix_nano = field.fixed64()?,
                8 => span.end_time_unix_nano = field.fixed64()?,
                9 => insert_key_value(&mut span.attrs, field.bytes()?)?,
                11 => span.events.push(field.bytes()?),
                15 if !has_status => {
                    has_status = true;
                    (span.status_code, span.status_message) = status(field.bytes()?)?;
                }
                15 => return Err(Malformed),
                16 => field.fixed32()?,
                _ => {}
            }
        }
        Ok(span)
    }
}

fn status(status: &[u8]) -> WireResult<(i32, &str)> {
    let (mut code, mut message) = (0, "");
    let mut fields = Fields::new(status);
    while let Some((number, field)) = fields.next()? {
        match number {
            2 => message = field.string()?,
            // An enum is an int32 on the wire; prost keeps the low 32 bits.
            #[allow(clippy::cast_possible_truncation)]
            3 => code = field.varint()? as i32,
            _ => {}
        }
    }
    Ok((code, message))
}

/// One span event, borrowed from the message.
#[derive(Debug)]
pub(super) struct WireEvent<'a> {
    pub(super) name: &'a str,
    pub(super) time_unix_nano: u64,
    pub(super) attrs: Attrs<'a>,
}

impl<'a> WireEvent<'a> {
    /// Read one of [`WireSpan::events`].
    pub(super) fn parse(bytes: &'a [u8]) -> WireResult<Self> {
        let mut event = WireEvent { name: "", time_unix_nano: 0, attrs: Attrs::default() };
        let mut fields = Fields::new(bytes);
        while let Some((number, field)) = fields.next()? {
            match number {
                1 => event.time_unix_nano = field.fixed64()?,
                2 => event.name = field.string()?,
                3 => insert_key_value(&mut event.attrs, field.bytes()?)?,
                4 => {
                    field.varint()?;
                }
                _ => {}
            }
        }
        Ok(event)
    }
}

/// The fields of one log record the mapping reads, borrowed from the message.
#[derive(Debug)]
pub(super) struct WireLogRecord<'a> {
    /// The whole record's bytes: a reject decodes them with prost to keep a readable copy.
    pub(super) bytes: &'a [u8],
    pub(super) time_unix_nano: u64,
    pub(super) observed_time_unix_nano: u64,
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
    pub(super) event_name: &'a str,
    pub(super) attrs: Attrs<'a>,
}

impl<'a> WireLogRecord<'a> {
    /// Read one log record (field 2 of a `ScopeLogs`).
    pub(super) fn parse(bytes: &'a [u8]) -> WireResult<Self> {
        let mut record = WireLogRecord {
            bytes,
            time_unix_nano: 0,
            observed_time_unix_nano: 0,
            trace_id: &[],
            span_id: &[],
            event_name: "",
            attrs: Attrs::default(),
        };
        let mut has_body = false;
        let mut fields = Fields::new(bytes);
        while let Some((number, field)) = fields.next()? {
            match number {
                1 => record.time_unix_nano = field.fixed64()?,
                11 => record.observed_time_unix_nano = field.fixed64()?,
                // severity_number and dropped_attributes_count.
                2 | 7 => {
                    field.varint()?;
                }
                3 => {
                    field.string()?;
                }
                // The body: checked, not read (feedback lives in attributes).
                5 if !has_body => {
                    has_body = true;
                    any_value(field.bytes()?, 0)?;
                }
                5 => return Err(Malformed),
                6 => insert_key_value(&mut record.attrs, field.bytes()?)?,
                8 => field.fixed32()?,
                9 => record.trace_id = field.bytes()?,
                10 => record.span_id = field.bytes()?,
                12 => record.event_name = field.string()?,
                _ => {}
            }
        }
        Ok(record)
    }
}

/// Read one `KeyValue` into `attrs` (first occurrence of a key wins, as in [`Attrs::extend`]).
fn insert_key_value<'a>(attrs: &mut Attrs<'a>, key_value: &'a [u8]) -> WireResult<()> {
    let (key, value) = key_value_parts(key_value, 0)?;
    // A key of the mapping table is ASCII, so only other keys need the UTF-8 check.
    match Key::lookup_bytes(key) {
        Some(known) => {
            if let Some(value) = value {
                attrs.insert_known(known, value);
            }
        }
        None => {
            let key = std::str::from_utf8(key).map_err(|_| Malformed)?;
            if let Some(value) = value {
                attrs.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Check a `KeyValue` the mapping does not read.
fn checked_key_value(key_value: &[u8], depth: u32) -> WireResult<()> {
    let (key, _) = key_value_parts(key_value, depth)?;
    std::str::from_utf8(key).map_err(|_| Malformed)?;
    Ok(())
}

/// A `KeyValue`'s key, as bytes the caller still has to check as UTF-8, and its value
/// (`None` when it has none, which the mapping ignores).
fn key_value_parts(key_value: &[u8], depth: u32) -> WireResult<(&[u8], Option<AttrValue<'_>>)> {
    let (mut key, mut value, mut has_key, mut has_value) = (&[][..], None, false, false);
    let mut fields = Fields::new(key_value);
    while let Some((number, field)) = fields.next()? {
        match number {
            // Repeated singular fields are left to prost (which keeps or merges the last).
            1 if !has_key => {
                has_key = true;
                key = field.bytes()?;
            }
            2 if !has_value => {
                has_value = true;
                value = any_value(field.bytes()?, depth)?;
            }
            1 | 2 => return Err(Malformed),
            // key_strindex (profiles' string table).
            3 => {
                field.varint()?;
            }
            _ => {}
        }
    }
    Ok((key, value))
}

/// An `AnyValue` (`None` when no variant is set). Arrays and key-value lists are checked all
/// the way down, as prost would decode them, but only arrays are kept (as their bytes).
fn any_value(message: &[u8], depth: u32) -> WireResult<Option<AttrValue<'_>>> {
    if depth >= MAX_DEPTH {
        return Err(Malformed);
    }
    let mut value = None;
    let mut fields = Fields::new(message);
    while let Some((number, field)) = fields.next()? {
        let next = match number {
            1 => AttrValue::Str(field.string()?),
            2 => AttrValue::Bool(field.varint()? != 0),
            // int64 is two's complement on the wire.
            #[allow(clippy::cast_possible_wrap)]
            3 => AttrValue::Int(field.varint()? as i64),
            4 => AttrValue::Double(f64::from_bits(field.fixed64()?)),
            5 => {
                let array = field.bytes()?;
                for item in array_items(array) {
                    any_value(item?, depth + 1)?;
                }
                AttrValue::Array(AttrArray::Wire(array))
            }
            6 => {
                let mut list = Fields::new(field.bytes()?);
                while let Some((number, entry)) = list.next()? {
                    if number == 1 {
                        checked_key_value(entry.bytes()?, depth + 1)?;
                    }
                }
                AttrValue::Unmapped(Unmapped::KeyValueList)
            }
            7 => {
                field.bytes()?;
                AttrValue::Unmapped(Unmapped::Bytes)
            }
            8 => {
                field.varint()?;
                AttrValue::Unmapped(Unmapped::StringTableIndex)
            }
            _ => continue,
        };
        // A oneof set twice: prost keeps the last, or merges two of the same message type.
        if value.replace(next).is_some() {
            return Err(Malformed);
        }
    }
    Ok(value)
}

/// The `AnyValue` bytes of each element of an `ArrayValue`.
fn array_items(array: &[u8]) -> impl Iterator<Item = WireResult<&[u8]>> {
    let mut fields = Fields::new(array);
    std::iter::from_fn(move || {
        loop {
            match fields.next() {
                Ok(Some((1, field))) => return Some(field.bytes()),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    })
}

/// The values of an array attribute read by this module, in order (elements without a value
/// are left out). The array was checked when it was read, so nothing fails here.
pub(super) fn array_values(array: &[u8]) -> impl Iterator<Item = AttrValue<'_>> {
    array_items(array).filter_map(|item| any_value(item.ok()?, 0).ok().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_up_to_ten_bytes_and_reject_overflow() {
        let mut fields = Fields::new(&[0x96, 0x01]);
        assert_eq!(fields.varint(), Ok(150));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Fields::new(&max).varint(), Ok(u64::MAX));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Fields::new(&overflow).varint(), Err(Malformed));
        assert_eq!(Fields::new(&[0x80]).varint(), Err(Malformed), "truncated");
    }

    #[test]
    fn fields_check_lengths_numbers_and_wire_types() {
        // Field 1, length 5, only 2 bytes left.
        assert_eq!(Fields::new(&[0x0a, 0x05, b'a', b'b']).next().err(), Some(Malformed));
        // Field number 0.
        assert_eq!(Fields::new(&[0x02, 0x00]).next().err(), Some(Malformed));
        // A start-group wire type.
        assert_eq!(Fields::new(&[0x0b]).next().err(), Some(Malformed));
        // A fixed32 then a fixed64, both consumed.
        let mut fields = Fields::new(&[0x0d, 1, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(fields.next(), Ok(Some((1, Field::Fixed32)))));
        assert!(matches!(fields.next(), Ok(Some((2, Field::Fixed64(2))))));
        assert!(matches!(fields.next(), Ok(None)));
    }
}
