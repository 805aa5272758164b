// js33 harness: OTel JS SDK -> OTLP/JSON lines files; drives openai / @anthropic-ai/sdk against the fake.
// usage (from a project dir holding the packages): node harness.js <lib> <capture:on|off> <outdir>
'use strict';
const path = require('path');
const fs = require('fs');
const { createRequire } = require('module');
const req = createRequire(path.join(process.cwd(), 'x.js'));
const [lib, capture, outdir] = process.argv.slice(2);
fs.mkdirSync(outdir, { recursive: true });
const BASE = process.env.FAKE_URL || 'http://127.0.0.1:39810';

const api = req('@opentelemetry/api');
const { NodeTracerProvider } = req('@opentelemetry/sdk-trace-node');
const { SimpleSpanProcessor } = req('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = req('@opentelemetry/resources');
let logsApi, sdkLogs;
try { logsApi = req('@opentelemetry/api-logs'); sdkLogs = req('@opentelemetry/sdk-logs'); } catch (e) { console.error('no logs sdk', e.message); }

// ---- OTLP/JSON mapping ----
function anyValue(v) {
  if (v === null || v === undefined) return {};
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (typeof v === 'bigint') return { intValue: v.toString() };
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (typeof v === 'object') return { kvlistValue: { values: Object.entries(v).map(([k, x]) => ({ key: k, value: anyValue(x) })) } };
  return { stringValue: String(v) };
}
const kvs = (o) => Object.entries(o || {}).map(([k, v]) => ({ key: k, value: anyValue(v) }));
const nanos = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
function scopeOf(x) { const s = x.instrumentationScope || x.instrumentationLibrary || {}; return { name: s.name, version: s.version }; }
function groupBy(items, fn) {
  const m = new Map();
  for (const it of items) {
    const k = JSON.stringify(scopeOf(it));
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(it);
  }
  return m;
}
const tracesFile = path.join(outdir, 'traces.jsonl');
const logsFile = path.join(outdir, 'logs.jsonl');
class FileSpanExporter {
  export(spans, cb) {
    const resource = spans[0].resource;
    const scopeSpans = [];
    for (const [k, ss] of groupBy(spans)) {
      scopeSpans.push({
        scope: JSON.parse(k),
        spans: ss.map((s) => {
          const ctx = s.spanContext();
          const parent = s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId;
          const o = {
            traceId: ctx.traceId, spanId: ctx.spanId, name: s.name, kind: s.kind + 1,
            startTimeUnixNano: nanos(s.startTime), endTimeUnixNano: nanos(s.endTime),
            attributes: kvs(s.attributes),
            events: s.events.map((e) => ({ timeUnixNano: nanos(e.time), name: e.name, attributes: kvs(e.attributes) })),
            status: s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
          };
          if (parent) o.parentSpanId = parent;
          return o;
        }),
      });
    }
    fs.appendFileSync(tracesFile, JSON.stringify({ resourceSpans: [{ resource: { attributes: kvs(resource.attributes) }, scopeSpans }] }) + '\n');
    cb({ code: 0 });
  }
  shutdown() { return Promise.resolve(); }
  forceFlush() { return Promise.resolve(); }
}
class FileLogExporter {
  export(records, cb) {
    const resource = records[0].resource;
    const scopeLogs = [];
    for (const [k, rs] of groupBy(records)) {
      scopeLogs.push({
        scope: JSON.parse(k),
        logRecords: rs.map((r) => {
          const o = {
            timeUnixNano: nanos(r.hrTime), observedTimeUnixNano: nanos(r.hrTimeObserved),
            attributes: kvs(r.attributes),
          };
          if (r.severityNumber !== undefined) o.severityNumber = r.severityNumber;
          if (r.severityText) o.severityText = r.severityText;
          if (r.body !== undefined) o.body = anyValue(r.body);
          if (r.eventName) o.eventName = r.eventName;
          if (r.spanContext) { o.traceId = r.spanContext.traceId; o.spanId = r.spanContext.spanId; o.flags = r.spanContext.traceFlags; }
          return o;
        }),
      });
    }
    fs.appendFileSync(logsFile, JSON.stringify({ resourceLogs: [{ resource: { attributes: kvs(resource.attributes) }, scopeLogs }] }) + '\n');
    cb({ code: 0 });
  }
  shutdown() { return Promise.resolve(); }
  forceFlush() { return Promise.resolve(); }
}

const resource = resourceFromAttributes({ 'service.name': `js-${lib}-${capture}`, 'deployment.environment.name': 'audit' });
const provider = new NodeTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(new FileSpanExporter())] });
provider.register();
let loggerProvider;
function mkLogProc(exp) { const p = new sdkLogs.SimpleLogRecordProcessor(exp); if (!p._exporter) return new sdkLogs.SimpleLogRecordProcessor({ exporter: exp }); return p; }
if (sdkLogs) {
  loggerProvider = new sdkLogs.LoggerProvider({ resource, processors: [mkLogProc(new FileLogExporter())] });
  logsApi.logs.setGlobalLoggerProvider(loggerProvider);
}

// ---- per-library instrumentation ----
const setup = require(path.join(__dirname, 'setup.js'));
const ctxLib = setup[process.env.SETUP || lib](req, capture === 'on', provider, loggerProvider);

const tracer = api.trace.getTracer('js33-app');
const truth = [];
async function call(name, fn) {
  return tracer.startActiveSpan(`app.${name}`, async (span) => {
    const t0 = process.hrtime.bigint();
    let ttft = null, err = null;
    try {
      await fn((/*first chunk*/) => { if (ttft === null) ttft = Number(process.hrtime.bigint() - t0) / 1e6; });
    } catch (e) { err = `${e.constructor && e.constructor.name}: ${e.status || ''} ${e.message}`.slice(0, 120); }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    truth.push({ name, client_ms: ms.toFixed(1), client_ttft_ms: ttft && ttft.toFixed(1), err, trace_id: span.spanContext().traceId });
    span.end();
  });
}

async function main() {
  const scenarios = require(path.join(__dirname, 'scenarios.js'));
  await scenarios[ctxLib.scenarios || 'default'](req, call, BASE, ctxLib);
  await provider.forceFlush();
  if (loggerProvider) await loggerProvider.forceFlush();
  fs.writeFileSync(path.join(outdir, 'truth.json'), JSON.stringify(truth, null, 1));
  console.log(JSON.stringify(truth));
  await provider.shutdown();
}
main().catch((e) => { console.error(e); process.exit(1); });
