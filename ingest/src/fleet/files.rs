//! The fleet written to files in the wire formats real producers use, for the demo, the file
//! source tests and benches: OTLP/JSON lines and length-prefixed OTLP protobuf as the OTel
//! Collector's file exporter writes them, and NDJSON events.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Encoder, Fleet, FleetRecord, Stream, Truth, WireFormat, WireMessage};
use crate::decode::PayloadFormat;

/// Which wire format each app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatMix {
    /// Every app uses one format.
    Single(WireFormat),
    /// Apps rotate through OTLP protobuf, OTLP/JSON and JSON events.
    Mixed,
    /// Apps alternate between OTLP/JSON and JSON events (text formats only).
    Text,
}

impl FormatMix {
    /// The format of the app at `index` in the fleet.
    pub fn for_app(self, index: usize) -> WireFormat {
        match self {
            FormatMix::Single(format) => format,
            FormatMix::Mixed => [WireFormat::OtlpProto, WireFormat::OtlpJson, WireFormat::JsonEvents][index % 3],
            FormatMix::Text => [WireFormat::OtlpJson, WireFormat::JsonEvents][index % 2],
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct FleetFiles {
    /// Each file with the payload format to read it as.
    pub files: Vec<(PathBuf, PayloadFormat)>,
    /// The rows the files must yield.
    pub truth: Truth,
}

/// Routes each record to its app's encoder, so one app's messages keep their format.
#[derive(Debug)]
pub struct FleetRouter {
    formats: HashMap<String, WireFormat>,
    encoders: HashMap<WireFormat, Encoder>,
}

impl FleetRouter {
    /// Encoders for `fleet` under `mix`; JSON events carry one event per message.
    pub fn new(fleet: &Fleet, mix: FormatMix, spans_per_message: usize, malformed_ratio: f64, seed: u64) -> Self {
        let formats: HashMap<String, WireFormat> =
            fleet.apps().iter().enumerate().map(|(index, app)| (app.id.clone(), mix.for_app(index))).collect();
        let encoders = [WireFormat::OtlpProto, WireFormat::OtlpJson, WireFormat::JsonEvents]
            .into_iter()
            .enumerate()
            .map(|(index, format)| {
                let per_message = if format == WireFormat::JsonEvents { 1 } else { spans_per_message.max(1) };
                (format, Encoder::new(format, per_message, malformed_ratio, seed.wrapping_add(index as u64)))
            })
            .collect();
        Self { formats, encoders }
    }

    /// Encode one record into `out`.
    pub fn push(&mut self, record: &FleetRecord, out: &mut Vec<WireMessage>) {
        let app = match record {
            FleetRecord::Inference(event) | FleetRecord::Retry(event) => event.app.as_str(),
            FleetRecord::Feedback(feedback) => feedback.app.as_str(),
        };
        let format = self.formats.get(app).copied().unwrap_or(WireFormat::JsonEvents);
        if let Some(encoder) = self.encoders.get_mut(&format) {
            encoder.push(record, out);
        }
    }

    /// Flush every encoder's partial batch into `out`.
    pub fn finish(&mut self, out: &mut Vec<WireMessage>) {
        for format in [WireFormat::OtlpProto, WireFormat::OtlpJson, WireFormat::JsonEvents] {
            if let Some(encoder) = self.encoders.get_mut(&format) {
                encoder.finish(out);
            }
        }
    }

    /// True when some app writes OTLP protobuf.
    fn has_proto(&self) -> bool {
        self.formats.values().any(|format| *format == WireFormat::OtlpProto)
    }

    /// The format of a message's app (malformed messages carry no app: JSON by default).
    fn format_of(&self, message: &WireMessage) -> WireFormat {
        match &message.truth.app {
            Some(app) => self.formats.get(app).copied().unwrap_or(WireFormat::JsonEvents),
            None => sniff_format(&message.payload),
        }
    }
}

fn sniff_format(payload: &[u8]) -> WireFormat {
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') if payload.windows(8).any(|w| w == b"resource") => WireFormat::OtlpJson,
        Some(b'{' | b'[') | None => WireFormat::JsonEvents,
        Some(_) => WireFormat::OtlpProto,
    }
}

/// One output file per (stream, format).
fn file_for(stream: Stream, format: WireFormat) -> (&'static str, PayloadFormat) {
    match (stream, format) {
        (Stream::Spans, WireFormat::OtlpProto) => ("otlp_spans.binpb", PayloadFormat::OtlpTraces),
        (Stream::Logs, WireFormat::OtlpProto) => ("otlp_logs.binpb", PayloadFormat::OtlpLogs),
        (Stream::Spans, _) => ("otlp_spans.jsonl", PayloadFormat::OtlpTraces),
        (Stream::Logs, _) => ("otlp_logs.jsonl", PayloadFormat::OtlpLogs),
        (Stream::Events, _) => ("llm_events.ndjson", PayloadFormat::JsonEvents),
    }
}

/// Write the whole fleet into `dir` and return the files and the truth.
pub fn write_fleet_files(
    fleet: &Fleet,
    dir: &Path,
    mix: FormatMix,
    spans_per_message: usize,
    malformed_ratio: f64,
    seed: u64,
) -> std::io::Result<FleetFiles> {
    std::fs::create_dir_all(dir)?;
    let mut router = FleetRouter::new(fleet, mix, spans_per_message, malformed_ratio, seed);
    let mut writers: HashMap<&'static str, (std::io::BufWriter<std::fs::File>, PayloadFormat)> = HashMap::new();
    let mut truth = Truth::default();
    let mut out = Vec::new();
    let mut write = |out: &mut Vec<WireMessage>, router: &FleetRouter, truth: &mut Truth| -> std::io::Result<()> {
        for message in out.drain(..) {
            let mut format = router.format_of(&message);
            if message.payload.is_empty() {
                // A line-delimited file cannot hold an empty message (it is a blank line, which
                // readers skip); only the length-prefixed protobuf file can carry one.
                if !router.has_proto() {
                    continue;
                }
                format = WireFormat::OtlpProto;
            }
            let (name, payload_format) = file_for(message.stream, format);
            let (writer, _) = match writers.entry(name) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let file = std::fs::File::create(dir.join(name))?;
                    entry.insert((std::io::BufWriter::new(file), payload_format))
                }
            };
            if format == WireFormat::OtlpProto {
                let length = u32::try_from(message.payload.len())
                    .map_err(|_| std::io::Error::other("message larger than 4 GiB"))?;
                writer.write_all(&length.to_be_bytes())?;
                writer.write_all(&message.payload)?;
            } else {
                // One message per line: a newline inside a malformed payload must not split it.
                for chunk in message.payload.split(|&b| b == b'\n') {
                    writer.write_all(chunk)?;
                    writer.write_all(b" ")?;
                }
                writer.write_all(b"\n")?;
            }
            truth.observe(&message);
        }
        Ok(())
    };
    for record in fleet.records() {
        router.push(&record, &mut out);
        write(&mut out, &router, &mut truth)?;
    }
    router.finish(&mut out);
    write(&mut out, &router, &mut truth)?;
    drop(write);
    let mut files = Vec::new();
    for (name, (mut writer, format)) in writers {
        writer.flush()?;
        files.push((dir.join(name), format));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(FleetFiles { files, truth })
}
