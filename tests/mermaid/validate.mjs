// Validates every ```mermaid block of a Markdown file with mermaid's own parser (jsdom supplies the DOM it wants).
// Install once: npm ci --prefix tests/mermaid. Usage: node tests/mermaid/validate.mjs FILE.md
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
const text = readFileSync(process.argv[2], 'utf8');
const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map(m => m[1]);
if (blocks.length === 0) { console.error('no mermaid block'); process.exit(1); }
for (const [i, b] of blocks.entries()) {
  try {
    const r = await mermaid.parse(b);
    console.log(`block ${i + 1}: ${r.diagramType} ok`);
  } catch (e) {
    console.error(`block ${i + 1}: ${e.message}`);
    process.exit(1);
  }
}
