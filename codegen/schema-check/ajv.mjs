// Compiles every published JSON Schema with ajv's 2020-12 build (default options, plus
// ajv-formats) and validates frames against them, for `codegen/tests/ajv.rs`.
//
// Usage: node ajv.mjs <input.json> <output.json>. The input is
// `{ "schemas": [{ "name", "schema" }], "frames": [{ "schema", "frame" }] }`; the output is
// `{ "schemas": [{ "name", "error", "warnings" }], "frames": [{ "valid", "errors" }] }`, where
// `error` is null when the schema compiled and `warnings` holds everything ajv logged while
// compiling it (strict-mode complaints such as `strictTypes` are logged, not thrown).
import { readFileSync, writeFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [inputPath, outputPath] = process.argv.slice(2);
const input = JSON.parse(readFileSync(inputPath, "utf8"));

let logged = [];
const logger = {
  log: (...args) => logged.push(args.join(" ")),
  warn: (...args) => logged.push(args.join(" ")),
  error: (...args) => logged.push(args.join(" ")),
};

const validators = new Map();
const schemas = input.schemas.map(({ name, schema }) => {
  // One instance per schema, so one schema's complaints are never blamed on another.
  const ajv = new Ajv2020({ logger });
  addFormats(ajv);
  logged = [];
  let error = null;
  try {
    validators.set(name, ajv.compile(schema));
  } catch (e) {
    error = String(e && e.message ? e.message : e);
  }
  return { name, error, warnings: logged };
});

const frames = input.frames.map(({ schema, frame }) => {
  const validate = validators.get(schema);
  if (!validate) return { valid: false, errors: [`schema ${schema} did not compile`] };
  const valid = validate(frame);
  const errors = (validate.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message}`);
  return { valid, errors };
});

writeFileSync(outputPath, JSON.stringify({ schemas, frames }));
