// Parses the AsyncAPI document with @asyncapi/parser and validates frames against its message
// payloads (draft-07, with ajv's draft-07 build and ajv-formats), for `codegen/tests/asyncapi.rs`.
//
// Usage: node asyncapi.mjs <input.json> <output.json>. The input is
// `{ "document": "<text>", "frames": [{ "message", "frame" }] }`; the output is
// `{ "diagnostics": [{ "severity", "code", "message", "path" }], "messages": { "send": [..],
// "receive": [..] }, "frames": [{ "valid", "errors" }] }` (severity 0 is an error).
import { readFileSync, writeFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const [inputPath, outputPath] = process.argv.slice(2);
const input = JSON.parse(readFileSync(inputPath, "utf8"));

const { document, diagnostics } = await new Parser().parse(input.document);
const out = {
  diagnostics: diagnostics.map((d) => ({
    severity: d.severity,
    code: String(d.code),
    message: d.message,
    path: d.path.join("/"),
  })),
  messages: {},
  frames: [],
};

if (document) {
  for (const operation of document.operations().all()) {
    out.messages[operation.id()] = operation.messages().all().map((m) => m.id());
  }
  // The payloads as written (the parser inlines every $ref, which makes a recursive schema
  // circular), compiled by ajv's draft-07 build from the document itself. The text is JSON
  // under a `#` header.
  const raw = JSON.parse(input.document.replace(/^#.*$/gm, ""));
  const ajv = new Ajv({ strict: false });
  addFormats(ajv);
  ajv.addSchema(raw, "asyncapi");
  const validators = new Map();
  for (const name of Object.keys(raw.components.messages)) {
    validators.set(name, ajv.compile({ $ref: `asyncapi#/components/messages/${name}/payload` }));
  }
  out.frames = input.frames.map(({ message, frame }) => {
    const validate = validators.get(message);
    if (!validate) return { valid: false, errors: [`no message ${message}`] };
    const valid = validate(frame);
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message}`);
    return { valid, errors };
  });
}

writeFileSync(outputPath, JSON.stringify(out));
