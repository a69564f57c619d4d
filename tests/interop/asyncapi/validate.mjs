// Validate an AsyncAPI document with the official parser (@asyncapi/parser); print each
// diagnostic as a JSON line, then a summary line; exit 1 on any error-level diagnostic.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const text = readFileSync(process.argv[2], "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
const errors = diagnostics.filter((d) => d.severity === 0);
console.log(JSON.stringify({ valid: document !== undefined && errors.length === 0, errors: errors.length, version: document?.version() }));
process.exit(errors.length === 0 && document ? 0 : 1);
