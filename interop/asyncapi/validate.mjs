// Validates an AsyncAPI document with the official parser (@asyncapi/parser) and prints
// what it read, as JSON, for the tests of nameko-rs to check.
//
//   node validate.mjs FILE      (or `-` for standard input)
//
// Diagnostics go to standard error, one a line: `error|warning|info|hint <code> <path>:
// <message>`. Exit 0 when the document parsed without any error-severity diagnostic
// (warnings and hints are printed, not fatal); 1 otherwise; 2 on bad usage.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const source = process.argv[2];
if (!source) {
  console.error('usage: node validate.mjs FILE|-');
  process.exit(2);
}
const text = readFileSync(source === '-' ? 0 : source, 'utf8');

const severities = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

const { document, diagnostics } = await new Parser().parse(text);
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === DiagnosticSeverity.Error) errors += 1;
  const path = (d.path ?? []).join('/');
  console.error(`${severities[d.severity] ?? d.severity} ${d.code} /${path}: ${d.message}`);
}

// A schema as plain JSON; a recursive type's cycles become `{"$circular": true}`.
function plain(value, seen = new Set()) {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return { $circular: true };
  seen.add(value);
  const out = Array.isArray(value)
    ? value.map((item) => plain(item, seen))
    : Object.fromEntries(
        Object.entries(value)
          .filter(([key]) => !key.startsWith('x-parser-'))
          .map(([key, item]) => [key, plain(item, seen)]),
      );
  seen.delete(value);
  return out;
}

function message(m) {
  return {
    id: m.id(),
    name: m.name() ?? null,
    payload: m.hasPayload() ? plain(m.payload().json()) : null,
    headers: m.hasHeaders() ? plain(m.headers().json()) : null,
    correlationId: m.hasCorrelationId() ? m.correlationId().location() : null,
  };
}

let summary = { errors, diagnostics: diagnostics.length };
if (document) {
  summary = {
    ...summary,
    asyncapi: document.version(),
    title: document.info().title(),
    servers: document.servers().all().map((s) => ({
      id: s.id(),
      host: s.host(),
      protocol: s.protocol(),
      pathname: s.hasPathname() ? s.pathname() : null,
      description: s.hasDescription() ? s.description() : null,
    })),
    channels: document.channels().all().map((c) => ({ id: c.id(), address: c.address() })),
    operations: document.operations().all().map((op) => ({
      id: op.id(),
      action: op.action(),
      channels: op.channels().all().map((c) => c.address()),
      tags: op.tags().all().map((t) => t.name()),
      messages: op.messages().all().map(message),
      reply: op.hasReply()
        ? {
            address: op.reply().hasAddress() ? op.reply().address().location() : null,
            messages: op.reply().messages().all().map(message),
          }
        : null,
    })),
  };
}
// Not process.exit(): it would cut a long summary written to a pipe short.
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exitCode = document && errors === 0 ? 0 : 1;
