"""Cut the realinst32 audit's OTLP/JSON output down to the spans of one instrumentation scope,
shifted in time so the earliest span starts at T0 (2025-06-01T12:00:00Z, the decode tests' clock),
with the bulky raw request/response copies and stack traces shortened. A fourth argument,
`--keep-parents`, keeps the spans' parent ids (for payloads whose nesting matters)."""
import json, sys
T0 = 1748779200000000000
src, scopes, dst = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
keep_parents = sys.argv[4:] == ["--keep-parents"]
DROP = {"input.value", "output.value", "exception.stacktrace", "llm.tools.0.tool.json_schema", "embedding.embeddings.0.embedding.vector"}
docs = [json.loads(l) for l in open(src)]
resource_spans = []
for d in docs:
    for rs in d["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            if ss.get("scope", {}).get("name") in scopes:
                resource_spans.append({"resource": rs.get("resource", {}), "scopeSpans": [ss]})
starts = [int(s["startTimeUnixNano"]) for rs in resource_spans for ss in rs["scopeSpans"] for s in ss["spans"]]
shift = T0 - min(starts)
def fix_time(o, key):
    if key in o and o[key] not in ("0", 0): o[key] = str(int(o[key]) + shift)
for rs in resource_spans:
    for ss in rs["scopeSpans"]:
        for s in ss["spans"]:
            fix_time(s, "startTimeUnixNano"); fix_time(s, "endTimeUnixNano")
            s["attributes"] = [a for a in s.get("attributes", []) if a["key"] not in DROP]
            if not keep_parents:
                s.pop("parentSpanId", None)
            for e in s.get("events", []):
                fix_time(e, "timeUnixNano")
                e["attributes"] = [a for a in e.get("attributes", []) if a["key"] not in DROP]
json.dump({"resourceSpans": resource_spans}, open(dst, "w"), separators=(",", ":"))
print(dst, sum(len(ss["spans"]) for rs in resource_spans for ss in rs["scopeSpans"]), "spans")
