// Drives `onlinealign serve` with the official `openai` npm package (ServeNodeClientTests): models, chat and completions,
// whole and streamed, greedy; and a wrong key. Reads BASE_URL, API_KEY and MODEL from the environment; prints one JSON object.
const { OpenAI } = require('openai');

async function main() {
  const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
  const model = process.env.MODEL;
  const out = {};
  out.models = [];
  for await (const m of client.models.list()) out.models.push(m.id);

  const chatRequest = { model, messages: [{ role: 'user', content: 'sort 3 1 2' }], temperature: 0, max_tokens: 40 };
  const chat = await client.chat.completions.create(chatRequest);
  out.chat = { text: chat.choices[0].message.content ?? '', finish: chat.choices[0].finish_reason, promptTokens: chat.usage.prompt_tokens };
  let streamed = '', chunks = 0, finish = null;
  for await (const chunk of await client.chat.completions.create({ ...chatRequest, stream: true })) {
    const delta = chunk.choices[0]?.delta?.content;
    if (delta) { streamed += delta; chunks++; }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  out.chatStreamed = { text: streamed, chunks, finish };

  const completionRequest = { model, prompt: 'reverse abc', temperature: 0, max_tokens: 24 };
  const completion = await client.completions.create(completionRequest);
  out.completion = { text: completion.choices[0].text, finish: completion.choices[0].finish_reason };
  let text = '';
  for await (const chunk of await client.completions.create({ ...completionRequest, stream: true })) text += chunk.choices[0]?.text ?? '';
  out.completionStreamed = { text };

  const seeded = { model, messages: [{ role: 'user', content: 'add 2 3' }], temperature: 1, max_tokens: 16, seed: 42 };
  const a = await client.chat.completions.create(seeded), b = await client.chat.completions.create(seeded);
  out.seeded = [a.choices[0].message.content, b.choices[0].message.content];

  try {
    await new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'wrong-key', maxRetries: 0 }).models.list();
    out.wrongKey = 'accepted';
  } catch (e) {
    out.wrongKey = e.status;
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch(e => { process.stderr.write(String(e?.stack ?? e)); process.exit(1); });
