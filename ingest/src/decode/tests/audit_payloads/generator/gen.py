#!/usr/bin/env python3
"""Record what REAL GenAI instrumentations emit, against a fake OpenAI/Anthropic server.

    python3 gen.py --instr openai-v2 --variant legacy --out out/openai-v2-legacy

--instr         openai-v2 | openllmetry | openinference | openlit | anthropic-sdk
                (each needs its package installed in the running interpreter's venv:
                opentelemetry-instrumentation-openai-v2; opentelemetry-instrumentation-openai +
                -anthropic; openinference-instrumentation-openai + -anthropic; openlit;
                anthropic-sdk = no instrumentation, the Anthropic SDK's own spans)
--variant       openai-v2: legacy | legacy-content | latest-span | latest-event
                           | old-legacy | old-content (for an older openai-v2, e.g. 2.1b0)
                openllmetry: attributes | events
                others: default
--out DIR       writes DIR/traces.pb, DIR/logs.pb (ExportTrace/LogsServiceRequest bytes),
                DIR/traces.pbl, DIR/logs.pbl (the same, 4-byte big-endian length-prefixed, as the
                Collector's file exporter `format: proto` writes and `driftwatch ingest --source
                file:` reads), DIR/traces.jsonl, DIR/logs.jsonl (OTLP/JSON, Collector file-exporter
                shape), DIR/calls.json (per call: span name hint, what the fake server answered,
                the client's wall time), DIR/versions.json.

Calls made (each in a parent span `ri32.<call>` so the lake rows can be matched back):
chat, chat_stream (stream_options.include_usage), chat_tool, embeddings, chat_error_429,
chat_error_500, and for instrumentations that cover Anthropic: anthropic_messages,
anthropic_stream, anthropic_error_429.
"""

import argparse
import base64
import json
import os
import struct
import sys
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

VARIANT_ENV = {
    ("openai-v2", "legacy"): {},
    ("openai-v2", "legacy-content"): {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
    ("openai-v2", "latest-span"): {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                                   "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"},
    ("openai-v2", "latest-event"): {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only"},
    # The same two on an older stack (openai-v2 2.1b0, before opentelemetry-util-genai took over):
    ("openai-v2", "old-legacy"): {},
    ("openai-v2", "old-content"): {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
    ("openllmetry", "attributes"): {"TRACELOOP_TRACE_CONTENT": "true"},
    ("openllmetry", "events"): {"TRACELOOP_TRACE_CONTENT": "true"},
    ("openinference", "default"): {},
    ("openlit", "default"): {},
    ("anthropic-sdk", "default"): {},
}
ANTHROPIC_COVERED = {"openllmetry", "openinference", "openlit", "anthropic-sdk"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instr", required=True, choices=sorted({i for i, _ in VARIANT_ENV}))
    ap.add_argument("--variant", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=39510)
    args = ap.parse_args()
    variant = args.variant or next(v for i, v in VARIANT_ENV if i == args.instr)
    if (args.instr, variant) not in VARIANT_ENV:
        ap.error(f"unknown variant {variant!r} for {args.instr}")
    os.environ.update(VARIANT_ENV[(args.instr, variant)])
    if args.instr != "anthropic-sdk":
        os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")  # only the instrumentation's spans
    os.environ["OPENAI_API_KEY"] = "sk-ri32-fake"
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-ri32-fake"
    os.makedirs(args.out, exist_ok=True)

    # Imports after the environment is set: some libraries read it at import time.
    from opentelemetry import trace, _logs
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    try:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    except ImportError:
        from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogRecordExporter
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from google.protobuf.json_format import MessageToDict

    tag = sum(map(ord, args.instr + variant)) & 0xFFFF

    class CountingIds(IdGenerator):
        """Ids unique per (instrumentation, variant) so several runs can share one lake."""

        def __init__(self):
            self.t = self.s = 0

        def generate_trace_id(self):
            self.t += 1
            return (0x3232 << 112) | (tag << 32) | self.t

        def generate_span_id(self):
            self.s += 1
            return (0x32 << 56) | (tag << 24) | self.s

    app = f"ri32-{args.instr}-{variant}"
    resource = Resource.create({"service.name": app, "deployment.environment": "ri32-test"})
    span_exporter = InMemorySpanExporter()
    tp = TracerProvider(resource=resource, id_generator=CountingIds())
    tp.add_span_processor(SimpleSpanProcessor(span_exporter))
    trace.set_tracer_provider(tp)
    log_exporter = InMemoryLogRecordExporter()
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    _logs.set_logger_provider(lp)
    try:
        from opentelemetry import _events
        from opentelemetry.sdk._events import EventLoggerProvider
        _events.set_event_logger_provider(EventLoggerProvider(lp))
    except ImportError:
        pass

    packages = ["openai", "anthropic", "opentelemetry-sdk"]
    if args.instr == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)
        packages += ["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai"]
    elif args.instr == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        use_attributes = variant == "attributes"
        OpenAIInstrumentor(use_attributes=use_attributes).instrument(tracer_provider=tp)
        AnthropicInstrumentor(use_legacy_attributes=use_attributes).instrument(tracer_provider=tp)
        packages += ["opentelemetry-instrumentation-openai", "opentelemetry-instrumentation-anthropic"]
    elif args.instr == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=tp)
        AnthropicInstrumentor().instrument(tracer_provider=tp)
        packages += ["openinference-instrumentation-openai", "openinference-instrumentation-anthropic"]
    elif args.instr == "openlit":
        import openlit
        openlit.init(application_name=app, environment="ri32-test", tracer=tp.get_tracer("openlit"),
                     disable_metrics=True, capture_message_content=True,
                     disabled_instrumentors=[])
        packages += ["openlit"]
    versions = {}
    for p in packages:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None

    import fakeserver
    server = fakeserver.start(args.port)
    import openai
    base = f"http://127.0.0.1:{args.port}"
    oa = openai.OpenAI(base_url=base + "/v1", max_retries=0)
    tracer = tp.get_tracer("ri32.gen")
    calls = []
    C = fakeserver.CANNED
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Where is my order 42?"}]

    def run(name, fn, truth):
        t0 = time.time()
        error = None
        with tracer.start_as_current_span(f"ri32.{name}"):
            try:
                fn()
            except Exception as e:  # the error calls
                error = f"{type(e).__module__}.{type(e).__name__}"
        calls.append(dict(call=name, wall_ms=round((time.time() - t0) * 1000, 1), client_error=error, truth=truth))

    def stream_chat():
        s = oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, stream=True,
                                       stream_options={"include_usage": True}, max_tokens=30)
        for _ in s:
            pass

    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}, "required": ["city"]}}}]
    run("chat", lambda: oa.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0.2),
        {**C["chat"], "request_model": "gpt-4o-mini", "provider": "openai", "operation": "chat"})
    run("chat_stream", stream_chat,
        {**C["stream"], "request_model": "gpt-4o-mini", "provider": "openai", "operation": "chat",
         "ttft_floor_ms": fakeserver.FIRST_CHUNK_DELAY * 1000})
    run("chat_tool", lambda: oa.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools),
        {**C["tool"], "request_model": "gpt-4o-mini", "provider": "openai", "operation": "chat"})
    run("embeddings", lambda: oa.embeddings.create(model="text-embedding-3-small", input=["hello world"]),
        {**C["embeddings"], "request_model": "text-embedding-3-small", "provider": "openai",
         "operation": "embeddings"})
    run("chat_error_429", lambda: oa.chat.completions.create(model="fail-429", messages=msgs),
        {"request_model": "fail-429", "status": "error", "http": 429, "provider": "openai"})
    run("chat_error_500", lambda: oa.chat.completions.create(model="fail-500", messages=msgs),
        {"request_model": "fail-500", "status": "error", "http": 500, "provider": "openai"})

    if args.instr in ANTHROPIC_COVERED:
        import anthropic
        an = anthropic.Anthropic(base_url=base, max_retries=0)
        amsgs = [{"role": "user", "content": "Say hello in French."}]

        def astream():
            with an.messages.stream(model="claude-3-5-sonnet-latest", max_tokens=64, messages=amsgs) as s:
                for _ in s.text_stream:
                    pass

        run("anthropic_messages", lambda: an.messages.create(
            model="claude-3-5-sonnet-latest", max_tokens=64, system="Be brief.", messages=amsgs),
            {**C["anthropic"], "request_model": "claude-3-5-sonnet-latest", "provider": "anthropic",
             "operation": "chat"})
        run("anthropic_stream", astream,
            {**C["anthropic_stream"], "request_model": "claude-3-5-sonnet-latest", "provider": "anthropic",
             "operation": "chat", "ttft_floor_ms": fakeserver.FIRST_CHUNK_DELAY * 1000})
        run("anthropic_error_429", lambda: an.messages.create(
            model="fail-429", max_tokens=64, messages=amsgs),
            {"request_model": "fail-429", "status": "error", "http": 429, "provider": "anthropic"})

    time.sleep(0.2)
    tp.force_flush()
    lp.force_flush()
    server.shutdown()
    spans = span_exporter.get_finished_spans()
    logs = log_exporter.get_finished_logs()
    write(args.out, "traces", encode_spans(spans) if spans else None, MessageToDict)
    write(args.out, "logs", encode_logs(logs) if logs else None, MessageToDict)
    with open(os.path.join(args.out, "calls.json"), "w") as f:
        json.dump(dict(instr=args.instr, variant=variant, app=app, env=VARIANT_ENV[(args.instr, variant)],
                       versions=versions, calls=calls), f, indent=1)
    print(f"{args.out}: {len(spans)} spans, {len(logs)} log records; versions {versions}")


def hexify(node):
    """Collector OTLP/JSON: ids are hex strings, not base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                hexify(value)
    elif isinstance(node, list):
        for item in node:
            hexify(item)
    return node


def write(out, stem, request, to_dict):
    for ext in ("pb", "pbl", "jsonl"):
        path = os.path.join(out, f"{stem}.{ext}")
        if os.path.exists(path):
            os.remove(path)
    if request is None:
        return
    raw = request.SerializeToString(deterministic=True)
    with open(os.path.join(out, f"{stem}.pb"), "wb") as f:
        f.write(raw)
    with open(os.path.join(out, f"{stem}.pbl"), "wb") as f:
        f.write(struct.pack(">I", len(raw)) + raw)
    line = json.dumps(hexify(to_dict(request, use_integers_for_enums=True)), separators=(",", ":"))
    with open(os.path.join(out, f"{stem}.jsonl"), "w") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
