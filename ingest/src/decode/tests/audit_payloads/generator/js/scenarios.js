'use strict';
// Each scenario: one real client call against the fake server.
async function openaiCalls(req, call, BASE, opts) {
  const mod = req('openai');
  const OpenAI = mod.OpenAI || mod.default || mod;
  if (opts.patchOpenAI) opts.patchOpenAI(mod);
  const client = new OpenAI({ apiKey: 'sk-fake', baseURL: BASE + '/v1', maxRetries: 0 });
  const msgs = [{ role: 'system', content: 'You are a shop assistant.' }, { role: 'user', content: 'When does my order ship?' }];
  await call('openai.chat', () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: msgs }));
  await call('openai.stream', async (first) => {
    const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Tell a story' }], stream: true, stream_options: { include_usage: true } });
    for await (const c of s) { if (c.choices && c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) first(); }
  });
  await call('openai.tool', () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] }));
  await call('openai.embeddings', () => client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello world' }));
  await call('openai.fail429', () => client.chat.completions.create({ model: 'fail-429', messages: msgs }));
  await call('openai.fail500', () => client.chat.completions.create({ model: 'fail-500', messages: msgs }));
}
async function anthropicCalls(req, call, BASE, opts) {
  const mod = req('@anthropic-ai/sdk');
  const Anthropic = mod.Anthropic || mod.default || mod;
  if (opts.patchAnthropic) opts.patchAnthropic(mod);
  const client = new Anthropic({ apiKey: 'sk-ant-fake', baseURL: BASE, maxRetries: 0 });
  await call('anthropic.messages', () => client.messages.create({ model: 'claude-3-5-sonnet-latest', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello in French' }] }));
  await call('anthropic.stream', async (first) => {
    const s = await client.messages.create({ model: 'claude-3-5-sonnet-latest', max_tokens: 22, messages: [{ role: 'user', content: 'Tell a story' }], stream: true });
    for await (const ev of s) { if (ev.type === 'content_block_delta') first(); }
  });
  await call('anthropic.fail429', () => client.messages.create({ model: 'fail-429', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }));
}
module.exports = {
  default: async (req, call, BASE, opts) => { if (!opts.noOpenAI) await openaiCalls(req, call, BASE, opts); if (opts.anthropic) await anthropicCalls(req, call, BASE, opts); },
  openaiCalls, anthropicCalls,
};
module.exports.vercel = async (req, call, BASE, opts) => {
  const ai = req('ai');
  const { createOpenAI } = req('@ai-sdk/openai');
  const { createAnthropic } = req('@ai-sdk/anthropic');
  const { z } = req('zod');
  const openai = createOpenAI({ apiKey: 'sk-fake', baseURL: BASE + '/v1' });
  const anthropic = createAnthropic({ apiKey: 'sk-ant-fake', baseURL: BASE + '/v1' });
  const tel = ai.registerTelemetry
    ? { telemetry: { functionId: 'audit-fn', recordInputs: opts.capture, recordOutputs: opts.capture } }
    : { experimental_telemetry: { isEnabled: true, functionId: 'audit-fn', recordInputs: opts.capture, recordOutputs: opts.capture } };
  const chat = (m) => (openai.chat ? openai.chat(m) : openai(m));
  const msgs = [{ role: 'user', content: 'When does my order ship?' }];
  const sys = ai.registerTelemetry ? { instructions: 'You are a shop assistant.' } : { system: 'You are a shop assistant.' };
  await call('vercel.openai.generateText', () => ai.generateText({ model: chat('gpt-4o-mini'), ...sys, messages: msgs, maxRetries: 0, ...tel }));
  await call('vercel.openai.streamText', async (first) => {
    const r = ai.streamText({ model: chat('gpt-4o-mini'), prompt: 'Tell a story', maxRetries: 0, ...tel, onError: () => {} });
    for await (const t of r.textStream) { if (t) first(); }
  });
  await call('vercel.openai.tool', () => ai.generateText({ model: chat('gpt-4o-mini'), prompt: 'Weather in Paris?', maxRetries: 0, ...tel,
    tools: { get_weather: ai.tool({ description: 'weather', inputSchema: z.object({ city: z.string() }) }) } }));
  await call('vercel.openai.embed', () => ai.embed({ model: openai.embedding('text-embedding-3-small'), value: 'hello world', maxRetries: 0, ...tel }));
  await call('vercel.openai.fail429', () => ai.generateText({ model: chat('fail-429'), messages: msgs, maxRetries: 0, ...tel }));
  await call('vercel.openai.fail500', () => ai.generateText({ model: chat('fail-500'), messages: msgs, maxRetries: 0, ...tel }));
  await call('vercel.anthropic.generateText', () => ai.generateText({ model: anthropic('claude-3-5-sonnet-latest'), system: 'Be brief.', prompt: 'Say hello in French', maxOutputTokens: 64, maxRetries: 0, ...tel }));
  await call('vercel.anthropic.streamText', async (first) => {
    const r = ai.streamText({ model: anthropic('claude-3-5-sonnet-latest'), prompt: 'Tell a story', maxOutputTokens: 22, maxRetries: 0, ...tel, onError: () => {} });
    for await (const t of r.textStream) { if (t) first(); }
  });
  await call('vercel.anthropic.fail429', () => ai.generateText({ model: anthropic('fail-429'), prompt: 'x', maxRetries: 0, ...tel }));
};
module.exports.lc = async (req, call, BASE) => {
  const { ChatOpenAI, OpenAIEmbeddings } = req('@langchain/openai');
  const mk = (model, extra = {}) => new ChatOpenAI({ model, apiKey: 'sk-fake', configuration: { baseURL: BASE + '/v1' }, maxRetries: 0, ...extra });
  await call('lc.chat', () => mk('gpt-4o-mini').invoke([['system', 'You are a shop assistant.'], ['human', 'When does my order ship?']]));
  await call('lc.stream', async (first) => { const s = await mk('gpt-4o-mini', { streamUsage: true }).stream('Tell a story'); for await (const c of s) { if (c.content) first(); } });
  await call('lc.embeddings', () => new OpenAIEmbeddings({ model: 'text-embedding-3-small', apiKey: 'sk-fake', configuration: { baseURL: BASE + '/v1' }, maxRetries: 0 }).embedQuery('hello world'));
  await call('lc.fail429', () => mk('fail-429').invoke('x'));
};
