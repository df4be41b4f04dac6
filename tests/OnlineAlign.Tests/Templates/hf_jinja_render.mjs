// Renders chat templates with @huggingface/jinja (the renderer transformers.js uses), as the independent reference
// for OnlineAlign's interpreter. Input on stdin: a JSON list of {template, variables}; output on stdout: a JSON
// list of {text} or {error}, in the same order. Run from the repository root: node tests/OnlineAlign.Tests/Templates/hf_jinja_render.mjs
import { Template } from "@huggingface/jinja";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = JSON.parse(input).map(({ template, variables }) => {
  try {
    return { text: new Template(template).render(variables) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
});
process.stdout.write(JSON.stringify(results));
