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
    /// The rows the files must yield, and the dead letters under the reasons the file source
    /// gives them, reading each file as `auto` (`driftwatch ingest --source file:<dir>`) or as
    /// its listed format alike.
    pub truth: Truth,
}

/// The seed of the `index`-th format's encoder: mixed (SplitMix64's finaliser), because `seed +
/// index` gave seed 7's second encoder the dice of seed 8's first.
fn encoder_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
                (format, Encoder::new(format, per_message, malformed_ratio, encoder_seed(seed, index)))
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

/// One output file per (stream, format): (file name, payload format, length-prefixed framing).
fn file_for(stream: Stream, format: WireFormat) -> (&'static str, PayloadFormat, bool) {
    match (stream, format) {
        (Stream::Spans, WireFormat::OtlpProto) => ("otlp_spans.binpb", PayloadFormat::OtlpTraces, true),
        (Stream::Logs, WireFormat::OtlpProto) => ("otlp_logs.binpb", PayloadFormat::OtlpLogs, true),
        (Stream::Spans, _) => ("otlp_spans.jsonl", PayloadFormat::OtlpTraces, false),
        (Stream::Logs, _) => ("otlp_logs.jsonl", PayloadFormat::OtlpLogs, false),
        // Binary garbage on the events stream is still one line of the NDJSON file.
        (Stream::Events, _) => ("llm_events.ndjson", PayloadFormat::JsonEvents, false),
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
            let (mut stream, mut format) = (message.stream, router.format_of(&message));
            if message.payload.is_empty() {
                // A line-delimited file cannot hold an empty message (it is a blank line, which
                // readers skip); only the length-prefixed protobuf file can carry one.
                if !router.has_proto() {
                    continue;
                }
                (stream, format) = (Stream::Spans, WireFormat::OtlpProto);
            }
            let (name, payload_format, length_prefixed) = file_for(stream, format);
            let (writer, _) = match writers.entry(name) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let file = std::fs::File::create(dir.join(name))?;
                    entry.insert((std::io::BufWriter::new(file), payload_format))
                }
            };
            if length_prefixed {
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
            // As the file source reads them: a line that does not open a JSON object is a bad
            // JSON line, whatever the format; anything else as `auto`.
            let opens_object = message.payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            let read_as = if length_prefixed || opens_object { PayloadFormat::Auto } else { PayloadFormat::JsonEvents };
            truth.observe_read_as(&message, read_as);
        }
        Ok(())
    };
    for record in fleet.records() {
        router.push(&record, &mut out);
        write(&mut out, &router, &mut truth)?;
    }
    router.finish(&mut out);
    write(&mut out, &router, &mut truth)?;
    let mut files = Vec::new();
    for (name, (mut writer, format)) in writers {
        writer.flush()?;
        files.push((dir.join(name), format));
    }
    // Inferences before the logs that rate them: ingested in this order with one processor, the
    // feedback is joined to its inference's model and prompt version.
    let rank = |format: &PayloadFormat| usize::from(*format == PayloadFormat::OtlpLogs);
    files.sort_by(|a, b| (rank(&a.1), &a.0).cmp(&(rank(&b.1), &b.0)));
    Ok(FleetFiles { files, truth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetConfig;

    #[test]
    fn json_event_files_hold_exactly_the_truths_events() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fleet = Fleet::new(FleetConfig { inferences: 20_000, malformed_ratio: 0.01, ..FleetConfig::default() });
        let written = write_fleet_files(&fleet, dir.path(), FormatMix::Mixed, 20, 0.01, 42)?;
        let json_apps: Vec<String> = fleet
            .apps()
            .iter()
            .enumerate()
            .filter(|(index, _)| FormatMix::Mixed.for_app(*index) == WireFormat::JsonEvents)
            .map(|(_, app)| app.id.clone())
            .collect();
        let bytes = std::fs::read(dir.path().join("llm_events.ndjson"))?;
        let mut ids: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            if value.get("type").and_then(|t| t.as_str()).unwrap_or("inference") == "inference"
                && let (Some(app), Some(id)) = (value["app"].as_str(), value["id"].as_str())
                && json_apps.iter().any(|a| a == app)
            {
                ids.entry(app.to_owned()).or_default().insert(id.to_owned());
            }
        }
        for app in &json_apps {
            let truth = written.truth.per_app.get(app).map_or(0, |t| t.distinct_event_ids);
            let seen = ids.get(app).map_or(0, |set| set.len() as u64);
            assert_eq!(seen, truth, "{app}: events in the file vs truth");
        }
        Ok(())
    }
}
