'use strict';
function reg(req, instrumentations, provider, loggerProvider) {
  const { registerInstrumentations } = req('@opentelemetry/instrumentation');
  registerInstrumentations({ instrumentations, tracerProvider: provider, loggerProvider });
}
module.exports = {
  // @opentelemetry/instrumentation-openai (contrib); the Anthropic SDK's own spans come along.
  otel: (req, capture, provider, lp) => {
    process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = capture ? 'true' : 'false';
    const { OpenAIInstrumentation } = req('@opentelemetry/instrumentation-openai');
    reg(req, [new OpenAIInstrumentation()], provider, lp);
    return { anthropic: true };
  },
};
module.exports.elastic = (req, capture, provider, lp) => {
  process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = capture ? 'true' : 'false';
  const { OpenAIInstrumentation } = req('@elastic/opentelemetry-instrumentation-openai');
  reg(req, [new OpenAIInstrumentation()], provider, lp);
  return {};
};
// OpenLLMetry JS; the Anthropic SDK's own spans turned off (ANTHROPIC_OPEN_TELEMETRY=false) unless BOTH=1.
module.exports.traceloop = (req, capture, provider, lp) => {
  if (!process.env.BOTH) process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
  const { OpenAIInstrumentation } = req('@traceloop/instrumentation-openai');
  const { AnthropicInstrumentation } = req('@traceloop/instrumentation-anthropic');
  reg(req, [new OpenAIInstrumentation({ traceContent: capture }), new AnthropicInstrumentation({ traceContent: capture })], provider, lp);
  return { anthropic: true };
};
// OpenInference JS; the Anthropic SDK's own spans off unless BOTH=1.
module.exports.oi = (req, capture, provider, lp) => {
  if (!process.env.BOTH) process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
  const traceConfig = capture ? {} : { hideInputs: true, hideOutputs: true };
  const { OpenAIInstrumentation } = req('@arizeai/openinference-instrumentation-openai');
  const { AnthropicInstrumentation } = req('@arizeai/openinference-instrumentation-anthropic');
  const oa = new OpenAIInstrumentation({ traceConfig }), an = new AnthropicInstrumentation({ traceConfig });
  reg(req, [oa, an], provider, lp);
  return { anthropic: true };
};
// Vercel AI SDK 7 (@ai-sdk/otel): VARIANT=modern|legacy; ai 6: experimental_telemetry.
module.exports.vercel = (req, capture, provider, lp) => {
  const ai = req('ai');
  if (ai.registerTelemetry) {
    const otel = req('@ai-sdk/otel');
    const I = process.env.VARIANT === 'legacy' ? otel.LegacyOpenTelemetry : otel.OpenTelemetry;
    ai.registerTelemetry(new I());
  }
  return { scenarios: 'vercel', capture };
};
// OpenInference LangChain (+ its OpenAI instrumentation when BOTH=1, as auto-instrumentation would).
module.exports.lc = (req, capture, provider, lp) => {
  const traceConfig = capture ? {} : { hideInputs: true, hideOutputs: true };
  const { LangChainInstrumentation } = req('@arizeai/openinference-instrumentation-langchain');
  const list = [new LangChainInstrumentation({ traceConfig })];
  if (process.env.BOTH) { const { OpenAIInstrumentation } = req('@arizeai/openinference-instrumentation-openai'); list.push(new OpenAIInstrumentation({ traceConfig })); }
  reg(req, list, provider, lp);
  const cbm = req('@langchain/core/callbacks/manager');
  list[0].manuallyInstrument(cbm);
  return { scenarios: 'lc' };
};
