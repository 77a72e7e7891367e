//! Helpers shared by the agreement tests: loading the published schemas and validating.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ has a parent")
        .to_path_buf()
}

/// A published schema, as committed under `generated/schema/`.
pub fn schema(relative: &str) -> Value {
    let path = repo_root().join("generated/schema").join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask codegen`", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for `schema` that also asserts `format` (so `date-time` is checked).
pub fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// The validation errors of `instance`, one line each.
pub fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// A validator for one `$defs` entry (`snapshot`, `event` or `topic`) of a family schema.
pub fn family_part(family: &str, part: &str) -> jsonschema::Validator {
    let mut schema = schema(&format!("topics/{family}.schema.json"));
    let map = schema.as_object_mut().expect("schemas are objects");
    map.remove("anyOf");
    map.insert("$ref".into(), Value::String(format!("#/$defs/{part}")));
    validator(&schema)
}

/// Transpiles the generated TypeScript (the `.ts` files the generators write under
/// `generated/typescript/`, so stray build output there is ignored) with the compiler of
/// `codegen/typescript-check`, imports `module` (e.g. `"fold.js"`) as `generated`, runs `body`
/// (JavaScript that may use `generated` and `input` and returns an array) under Node, and
/// returns that array. `what` names the test in error messages.
pub fn run_generated_typescript(what: &str, module: &str, body: &str, input: &Value) -> Vec<Value> {
    let root = repo_root();
    let typescript = typescript_compiler(&root.join("codegen/typescript-check"), what);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prefix = "generated/typescript/";
    let files: Vec<String> = rtbus_codegen::generate()
        .expect("the generators run")
        .into_iter()
        .filter_map(|f| f.path().strip_prefix(prefix).map(str::to_owned))
        .filter(|path| path.ends_with(".ts"))
        .collect();
    let source = module.replace(".js", ".ts");
    assert!(
        files.contains(&source),
        "no generator writes {prefix}{source}: {files:?}"
    );
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        path
    };
    let files_path = write("files.json", &serde_json::Value::from(files).to_string());
    let input_path = write("input.json", &input.to_string());
    let script = write(
        "run.mjs",
        &format!(
            "{NODE_PRELUDE}\nconst generated = await import(pathToFileURL(join(outDir, {module:?})).href);\n\
             const input = JSON.parse(readFileSync(inputPath, \"utf8\"));\n\
             const results = await (async () => {{\n{body}\n}})();\n\
             writeFileSync(outputPath, JSON.stringify(results));\n"
        ),
    );
    let output_path = dir.path().join("output.json");
    let output = std::process::Command::new("node")
        .arg(&script)
        .arg(&typescript)
        .arg(root.join(prefix))
        .arg(&files_path)
        .arg(dir.path().join("js"))
        .arg(&input_path)
        .arg(&output_path)
        .output()
        .unwrap_or_else(|e| {
            panic!("node could not start ({e}); the {what} runs the generated TypeScript under Node 20 or later")
        });
    assert!(
        output.status.success(),
        "node failed to run generated/typescript/{source} for the {what} ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&output_path).expect("node wrote its output");
    serde_json::from_str(&text).expect("node's output is a JSON array")
}

/// Transpiles the listed generated `.ts` files into `outDir` as ES modules.
const NODE_PRELUDE: &str = r#"
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { pathToFileURL } from "node:url";

const [typescriptPath, sourceDir, filesPath, outDir, inputPath, outputPath] = process.argv.slice(2);
const ts = createRequire(import.meta.url)(typescriptPath);

for (const name of JSON.parse(readFileSync(filesPath, "utf8"))) {
  const file = join(sourceDir, name);
  const result = ts.transpileModule(readFileSync(file, "utf8"), {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
    },
  });
  if (result.diagnostics.length > 0) {
    const messages = result.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    throw new Error(`${file} does not transpile: ${messages.join("; ")}`);
  }
  const out = join(outDir, relative(sourceDir, file).replace(/\.ts$/, ".js"));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, result.outputText);
}
writeFileSync(join(outDir, "package.json"), '{"type":"module"}');
"#;

/// The TypeScript compiler of `codegen/typescript-check`, installed with `npm ci` if missing.
fn typescript_compiler(check_dir: &std::path::Path, what: &str) -> PathBuf {
    let module = check_dir.join("node_modules/typescript");
    if !module.join("package.json").exists() {
        let status = std::process::Command::new("npm")
            .arg("ci")
            .current_dir(check_dir)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "`npm ci` in {} could not start ({e}); the {what} needs Node 20+ and npm",
                    check_dir.display()
                )
            });
        assert!(
            status.success(),
            "`npm ci` in {} failed ({status}); the {what} needs its TypeScript compiler (run \
             `npm ci` there by hand to see why)",
            check_dir.display()
        );
    }
    module
}

/// `value` with every number as an `f64`, so `1` and `1.0` (Rust and JavaScript spellings of
/// one double) compare equal.
pub fn numbers_as_f64(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The node check package of the schema tests (`ajv`, `ajv-formats`, `@asyncapi/parser`).
pub const SCHEMA_CHECK_DIR: &str = "codegen/schema-check";

/// Runs `script` (a file of [`SCHEMA_CHECK_DIR`]) under Node as `node <script> <input> <output>`
/// and returns the JSON it wrote to `<output>`. The package must be installed (`npm ci` there,
/// which `cargo xtask test` runs): the test never downloads anything, and says so when it is
/// missing. `what` names the test in error messages.
pub fn run_schema_check(what: &str, script: &str, input: &Value) -> Value {
    let dir = repo_root().join(SCHEMA_CHECK_DIR);
    assert!(
        dir.join("node_modules/.package-lock.json").exists(),
        "{} has no node_modules: the {what} needs its pinned packages; run `npm ci` in {} \
         (`cargo xtask test` does)",
        dir.display(),
        dir.display(),
    );
    let temp = tempfile::tempdir().expect("a temporary directory");
    let input_path = temp.path().join("input.json");
    std::fs::write(&input_path, input.to_string()).expect("write the input for node");
    let output_path = temp.path().join("output.json");
    let output = std::process::Command::new("node")
        .arg(dir.join(script))
        .arg(&input_path)
        .arg(&output_path)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("node could not start ({e}); the {what} runs {SCHEMA_CHECK_DIR}/{script} under Node 20 or later")
        });
    assert!(
        output.status.success(),
        "node {SCHEMA_CHECK_DIR}/{script} failed for the {what} ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&output_path).expect("node wrote its output");
    serde_json::from_str(&text).expect("node's output is JSON")
}
