//! TypeScript: one ts-rs file per type, plus `codes.ts`, `constants.ts`, `topics.ts` and an
//! `index.ts` barrel ([`barrel`]) over every module the generators write to
//! `generated/typescript`.
//!
//! Every relative import ends in `.js`, so the files work unchanged under `moduleResolution`
//! `NodeNext` (and `Bundler`) once compiled, e.g. as the `@rtbus/protocol` package.

use std::any::TypeId;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use rtbus_protocol::catalog::{Family, FamilyVisitor, TopicFamily, visit_families};
use rtbus_protocol::{
    ClientMessage, CloseCode, ENDPOINT_PATH, ErrorCode, MAX_REQUEST_ID_LEN, MAX_SAFE_INTEGER,
    MAX_TOPIC_LEN, PROTOCOL_VERSION, SUBPROTOCOL, ServerMessage, TOPIC_PATTERN,
};
use ts_rs::{Config, TS, TypeVisitor};

use crate::{Body, Error, GeneratedFile, Result};

const DIR: &str = "generated/typescript";

/// The extension every generated relative import ends in (Node ESM resolution needs one).
const IMPORT_EXTENSION: &str = "js";

/// The modules of this generator that hold runtime values; the barrel re-exports them with
/// `export *`. Every other ts-rs module is types only (`export type *`).
const VALUE_MODULES: &[&str] = &["codes", "constants", "topics"];

/// Runtime modules of `generated/typescript` written by other generators (`decode.ts` by
/// `decode_ts`, `fold.ts` by `fold_ts`) that the barrel re-exports with `export *`. A module
/// listed here is exported only when a generator of the same run produces it.
pub(crate) const EXTRA_MODULES: &[&str] = &["decode", "fold"];

/// The ts-rs module that declares the wire union of error codes; `codes.ts` re-exports it
/// together with the runtime values under the same name.
const ERROR_CODE_MODULE: &str = "ErrorCode";

/// A `/** ... */` block for `text`, indented by `indent`.
fn jsdoc(text: &str, indent: &str) -> String {
    let text = text.replace("*/", "*\\/");
    let mut out = format!("{indent}/**\n");
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

/// `text` with every run of whitespace (doc-comment line breaks included) as one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JavaScript string literal.
fn js_string(text: &str) -> String {
    // JSON string syntax is a subset of JavaScript's; serializing a `&str` cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Renders every exportable type reachable from the roots, keyed by module path (without
/// `.ts`), e.g. `ClientMessage` or `serde_json/JsonValue`.
struct Collect {
    cfg: Config,
    seen: HashSet<TypeId>,
    modules: BTreeMap<String, String>,
    error: Option<Error>,
}

impl Collect {
    fn module_of<T: TS + ?Sized + 'static>() -> Option<String> {
        let path = T::output_path()?;
        let path = path.to_string_lossy().replace('\\', "/");
        Some(path.trim_end_matches(".ts").to_owned())
    }
}

impl TypeVisitor for Collect {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if self.error.is_some() {
            return;
        }
        let Some(module) = Collect::module_of::<T>() else {
            return;
        };
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        match T::export_to_string(&self.cfg) {
            Ok(text) => {
                // Replace ts-rs's own note with the project header.
                let body = text
                    .split_once('\n')
                    .map_or(text.as_str(), |(_, rest)| rest)
                    .trim_start_matches('\n');
                self.modules.insert(module, body.trim_end().to_owned());
            }
            Err(source) => {
                self.error = Some(Error::TypeScript {
                    ty: std::any::type_name::<T>(),
                    source,
                });
                return;
            }
        }
        T::visit_dependencies(self);
    }
}

/// The TypeScript names of one family's payload types and the modules that declare them.
struct FamilyTypes {
    family: Family,
    snapshot: (String, Option<String>),
    event: (String, Option<String>),
}

struct Families<'a> {
    collect: &'a mut Collect,
    out: Vec<FamilyTypes>,
}

impl FamilyVisitor for Families<'_> {
    fn visit<F: TopicFamily>(&mut self, family: Family) {
        self.collect.visit::<F::Snapshot>();
        self.collect.visit::<F::Event>();
        let cfg = &self.collect.cfg;
        self.out.push(FamilyTypes {
            family,
            snapshot: (F::Snapshot::ident(cfg), Collect::module_of::<F::Snapshot>()),
            event: (F::Event::ident(cfg), Collect::module_of::<F::Event>()),
        });
    }
}

fn codes_ts() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "import type {{ ErrorCode as ErrorCodeValue }} from \"./{ERROR_CODE_MODULE}.{IMPORT_EXTENSION}\";\n"
    );
    out.push_str(&jsdoc(
        "What a client needs to know about one error or close code.",
        "",
    ));
    out.push_str(
        "export interface CodeInfo<V> {\n\
         \x20 /** The value on the wire. */\n\
         \x20 readonly value: V;\n\
         \x20 /** Whether a client that sees this code should reconnect (with backoff). */\n\
         \x20 readonly reconnect: boolean;\n\
         \x20 /** What the code means, for a client author. */\n\
         \x20 readonly description: string;\n\
         }\n\n",
    );

    // Error codes: the wire union comes from ts-rs; the values and facts from the Rust enum.
    let error_doc = doc_of::<ErrorCode>();
    out.push_str(&jsdoc(&error_doc, ""));
    out.push_str("export type ErrorCode = ErrorCodeValue;\n\n");
    out.push_str(&jsdoc(
        &format!("{error_doc}\n\nEvery error code as a runtime value, with whether to reconnect."),
        "",
    ));
    out.push_str("export const ErrorCode = {\n");
    for code in ErrorCode::ALL {
        out.push_str(&jsdoc(code.description(), "  "));
        let _ = writeln!(
            out,
            "  {}: {{ value: {}, reconnect: {}, description: {} }},",
            code.name(),
            js_string(code.value()),
            code.reconnect(),
            js_string(&one_line(code.description()))
        );
    }
    out.push_str("} as const satisfies Record<string, CodeInfo<ErrorCode>>;\n\n");
    out.push_str(
        "/** Every error code, in declaration order. */\n\
         export const ERROR_CODES: readonly CodeInfo<ErrorCode>[] = Object.values(ErrorCode);\n\n\
         // Compile-time proof that the runtime values cover the wire union exactly.\n\
         type MissingErrorCode = Exclude<ErrorCode, (typeof ErrorCode)[keyof typeof ErrorCode][\"value\"]>;\n\
         const everyErrorCodeHasAValue: [MissingErrorCode] extends [never] ? true : MissingErrorCode = true;\n\
         void everyErrorCodeHasAValue;\n\n\
         /** The facts about error code `value`, or `undefined` for a code this version does not know. */\n\
         export function errorCodeInfo(value: string): CodeInfo<ErrorCode> | undefined {\n\
         \x20 return ERROR_CODES.find((code) => code.value === value);\n\
         }\n\n",
    );

    // Close codes: not a serde type (they travel in WebSocket close frames), so both the union
    // and the values come from the Rust table.
    let close_doc = "Why a WebSocket connection was closed: the status code of the close frame. \
        Codes below 4000 are the standard RFC 6455 ones; 4000–4999 are rtbus's own.";
    out.push_str(&jsdoc(close_doc, ""));
    let union: Vec<String> = CloseCode::ALL
        .iter()
        .map(|c| c.value().to_string())
        .collect();
    let _ = writeln!(out, "export type CloseCode = {};\n", union.join(" | "));
    out.push_str(&jsdoc(
        &format!("{close_doc}\n\nEvery close code as a runtime value, with whether to reconnect."),
        "",
    ));
    out.push_str("export const CloseCode = {\n");
    for code in CloseCode::ALL {
        out.push_str(&jsdoc(code.description(), "  "));
        let _ = writeln!(
            out,
            "  {}: {{ value: {}, reconnect: {}, description: {} }},",
            code.name(),
            code.value(),
            code.reconnect(),
            js_string(&one_line(code.description()))
        );
    }
    out.push_str("} as const satisfies Record<string, CodeInfo<CloseCode>>;\n\n");
    out.push_str(
        "/** Every close code, in declaration order. */\n\
         export const CLOSE_CODES: readonly CodeInfo<CloseCode>[] = Object.values(CloseCode);\n\n\
         /**\n\
         \x20* The facts about close code `value`, or `undefined` for a code rtbus does not define\n\
         \x20* (e.g. 1006, which a browser reports when the connection dropped without a close frame).\n\
         \x20*/\n\
         export function closeCodeInfo(value: number): CodeInfo<CloseCode> | undefined {\n\
         \x20 return CLOSE_CODES.find((code) => code.value === value);\n\
         }\n",
    );
    out
}

/// The doc comment of a derived type, as plain text.
fn doc_of<T: TS>() -> String {
    T::docs()
        .unwrap_or_default()
        .lines()
        .map(|line| {
            line.trim()
                .trim_start_matches("/**")
                .trim_end_matches("*/")
                .trim_start_matches('*')
                .trim()
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn constants_ts() -> String {
    let mut out = String::new();
    let items: [(&str, &str, String); 7] = [
        (
            "PROTOCOL_VERSION",
            "The protocol version these types describe.",
            PROTOCOL_VERSION.to_string(),
        ),
        (
            "ENDPOINT_PATH",
            "The HTTP path on which a server accepts rtbus WebSocket connections.",
            js_string(ENDPOINT_PATH),
        ),
        (
            "SUBPROTOCOL",
            "The WebSocket subprotocol that names this protocol version: pass it to\n`new WebSocket(url, SUBPROTOCOL)`.",
            js_string(SUBPROTOCOL),
        ),
        (
            "MAX_SAFE_INTEGER",
            "The largest integer rtbus puts on the wire (2^53 − 1): every wire integer is a plain\n`number`, never a `bigint`.",
            MAX_SAFE_INTEGER.to_string(),
        ),
        (
            "MAX_TOPIC_LEN",
            "The longest topic, in bytes.",
            MAX_TOPIC_LEN.to_string(),
        ),
        (
            "MAX_REQUEST_ID_LEN",
            "The longest request id a client may choose, in characters.",
            MAX_REQUEST_ID_LEN.to_string(),
        ),
        (
            "TOPIC_PATTERN",
            "The grammar every topic matches: dot-separated segments of lowercase letters, digits,\n`_` and `-`, optionally followed by `:` and a key of ASCII letters, digits, `_`, `-`, `.`\nand `~`.",
            format!("new RegExp({})", js_string(TOPIC_PATTERN)),
        ),
    ];
    for (name, doc, value) in items {
        out.push_str(&jsdoc(doc, ""));
        let _ = writeln!(out, "export const {name} = {value};\n");
    }
    out.trim_end().to_owned() + "\n"
}

/// The topic grammar as TypeScript types: the characters a segment and a key may hold, and
/// `CheckedTopic`, which checks a literal topic character by character.
fn topic_grammar_ts() -> String {
    let chars = |extra: &[char], upper: bool| {
        let mut all: Vec<String> = ('a'..='z').chain('0'..='9').map(String::from).collect();
        if upper {
            all.extend(('A'..='Z').map(String::from));
        }
        all.extend(extra.iter().map(|c| c.to_string()));
        all.iter()
            .map(|c| js_string(c))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = String::new();
    out.push_str(&jsdoc("A character a topic segment may hold.", ""));
    let _ = writeln!(
        out,
        "export type TopicSegmentChar = {};\n",
        chars(&['_', '-'], false)
    );
    out.push_str(&jsdoc("A character a topic key (after `:`) may hold.", ""));
    let _ = writeln!(
        out,
        "export type TopicKeyChar = {};\n",
        chars(&['_', '-', '.', '~'], true)
    );
    out.push_str(
        "/** Whether every character of `S` is one of `C` (`true` for a non-literal `string`). */\n\
         type AllOf<S extends string, C extends string> = string extends S ? true :\n\
         \x20 S extends \"\" ? true :\n\
         \x20 S extends `${infer H}${infer R}` ? (H extends C ? AllOf<R, C> : false) : false;\n\n\
         /** Whether `S` is one or more non-empty segments joined by single dots. */\n\
         type IsPath<S extends string> = string extends S ? true :\n\
         \x20 S extends `${infer Segment}.${infer Rest}`\n\
         \x20   ? (Segment extends \"\" ? false : AllOf<Segment, TopicSegmentChar> extends true ? IsPath<Rest> : false)\n\
         \x20   : S extends \"\" ? false : AllOf<S, TopicSegmentChar>;\n\n",
    );
    out.push_str(&jsdoc(
        "`T` when it follows the topic grammar (segments of lowercase letters, digits, `_` and \
         `-` joined by single dots, then optionally `:` and a non-empty key of letters, digits, \
         `_`, `-`, `.` and `~`), otherwise `never`. Parts typed as `string` are left to the \
         server. The 200-byte limit is not checked.\n\nUse it to refuse a bad literal at \
         compile time: `function subscribe<T extends string>(topic: T & CheckedTopic<T>)`.",
        "",
    ));
    out.push_str(
        "export type CheckedTopic<T extends string> =\n\
         \x20 T extends `${infer Path}:${infer Key}`\n\
         \x20   ? (IsPath<Path> extends true ? (Key extends \"\" ? never : AllOf<Key, TopicKeyChar> extends true ? T : never) : never)\n\
         \x20   : IsPath<T> extends true ? T : never;\n\n",
    );
    out
}

fn topics_ts(families: &[FamilyTypes]) -> String {
    let mut out = String::new();
    let mut imports: BTreeMap<String, String> = BTreeMap::new();
    imports.insert("Delivery".into(), format!("./Delivery.{IMPORT_EXTENSION}"));
    for f in families {
        for (name, module) in [&f.snapshot, &f.event] {
            if let Some(module) = module {
                imports.insert(name.clone(), format!("./{module}.{IMPORT_EXTENSION}"));
            }
        }
    }
    let _ = writeln!(
        out,
        "import {{ MAX_TOPIC_LEN, TOPIC_PATTERN }} from \"./constants.{IMPORT_EXTENSION}\";"
    );
    for (name, module) in &imports {
        let _ = writeln!(out, "import type {{ {name} }} from \"{module}\";");
    }
    out.push('\n');

    out.push_str(&jsdoc(
        "The topic families of the catalog, by name, with their snapshot and event payload types.",
        "",
    ));
    out.push_str("export interface TopicFamilies {\n");
    for f in families {
        let doc = format!(
            "{}\n\nTopics: `{}`.\n\nFold rule: {}",
            f.family.description(),
            f.family.shape().display(f.family.name()),
            f.family.fold_rule()
        );
        out.push_str(&jsdoc(&doc, "  "));
        let _ = writeln!(
            out,
            "  {}: {{ snapshot: {}; event: {} }};",
            js_string(f.family.name()),
            f.snapshot.0,
            f.event.0
        );
    }
    out.push_str("}\n\n");

    out.push_str("/** The name of a topic family. */\n");
    out.push_str("export type FamilyName = keyof TopicFamilies;\n\n");

    out.push_str(&topic_grammar_ts());
    out.push_str(&jsdoc(
        "Every topic that belongs to a family of the catalog, as closely as a template literal \
         type can say it: a key or a segment after a family's name must start with a character \
         the grammar allows there, so `\"sessions.activity:\"` (empty key) and \
         `\"custom.Has Spaces\"` are refused. What a template type cannot check (every later \
         character, the 200-byte limit) `CheckedTopic` checks for literal topics and the server \
         checks at run time.\n\nA value typed as the whole `KnownTopic` names no family: \
         `EventOf<KnownTopic>` is the union of every family's event type, and since `custom.*` \
         carries any JSON value, that union admits any JSON. Narrow the topic to one family \
         (`FamilyTopic<\"sessions.state\">`) to keep its payload types.",
        "",
    ));
    let patterns: Vec<String> = families
        .iter()
        .map(|f| f.family.shape().typescript_pattern(f.family.name()))
        .collect();
    let _ = writeln!(
        out,
        "export type KnownTopic =\n  | {};\n",
        patterns.join("\n  | ")
    );

    out.push_str(&jsdoc(
        "The topics of family `F`, e.g. `FamilyTopic<\"custom\">`.",
        "",
    ));
    out.push_str("export type FamilyTopic<F extends FamilyName> =\n");
    for (f, pattern) in families.iter().zip(&patterns) {
        let _ = writeln!(
            out,
            "  F extends {} ? {pattern} :",
            js_string(f.family.name())
        );
    }
    out.push_str("  never;\n\n");
    out.push_str(&jsdoc(
        "The name of the family that owns topic `T`, resolved at compile time.",
        "",
    ));
    out.push_str("export type FamilyOf<T extends string> =\n");
    for (f, pattern) in families.iter().zip(&patterns) {
        let _ = writeln!(
            out,
            "  T extends {pattern} ? {} :",
            js_string(f.family.name())
        );
    }
    out.push_str("  never;\n\n");

    out.push_str(&jsdoc(
        "The snapshot payload type of topic `T`, e.g. `SnapshotOf<\"sessions.state\">`.",
        "",
    ));
    out.push_str(
        "export type SnapshotOf<T extends KnownTopic> = TopicFamilies[FamilyOf<T>][\"snapshot\"];\n\n",
    );
    out.push_str(&jsdoc(
        "The event payload type of topic `T`, e.g. `EventOf<FamilyTopic<\"sessions.activity\">>`.",
        "",
    ));
    out.push_str(
        "export type EventOf<T extends KnownTopic> = TopicFamilies[FamilyOf<T>][\"event\"];\n\n",
    );
    out.push_str(&jsdoc(
        "The `data` of a `snapshot` frame on topic `T`, with its payload typed by the topic.",
        "",
    ));
    out.push_str(
        "export type SnapshotData<T extends KnownTopic> = Omit<Delivery, \"topic\" | \"payload\"> & {\n\
         \x20 topic: T;\n\
         \x20 payload: SnapshotOf<T>;\n\
         };\n\n",
    );
    out.push_str(&jsdoc(
        "The `data` of an `event` frame on topic `T`, with its payload typed by the topic.",
        "",
    ));
    out.push_str(
        "export type EventData<T extends KnownTopic> = Omit<Delivery, \"topic\" | \"payload\"> & {\n\
         \x20 topic: T;\n\
         \x20 payload: EventOf<T>;\n\
         };\n\n",
    );

    out.push_str(&jsdoc("A topic family as a runtime value.", ""));
    out.push_str(
        "export interface FamilyInfo {\n\
         \x20 /** The family's name. */\n\
         \x20 readonly name: FamilyName;\n\
         \x20 /** How its topics look, for people. */\n\
         \x20 readonly display: string;\n\
         \x20 /** Matches exactly the topics of the family. */\n\
         \x20 readonly pattern: RegExp;\n\
         \x20 /** What the family carries. */\n\
         \x20 readonly description: string;\n\
         \x20 /** How an event changes the snapshot. */\n\
         \x20 readonly foldRule: string;\n\
         }\n\n",
    );
    out.push_str("/** Every family of the catalog, in catalog order. */\n");
    out.push_str("export const FAMILIES: readonly FamilyInfo[] = [\n");
    for f in families {
        let name = f.family.name();
        let _ = writeln!(
            out,
            "  {{\n    name: {},\n    display: {},\n    pattern: new RegExp({}),\n    description: {},\n    foldRule: {},\n  }},",
            js_string(name),
            js_string(&f.family.shape().display(name)),
            js_string(&f.family.shape().topic_regex(name)),
            js_string(f.family.description()),
            js_string(f.family.fold_rule()),
        );
    }
    out.push_str("];\n\n");
    out.push_str(
        "/** The family that owns `topic` at run time, or `undefined` when none does. */\n\
         export function familyOf(topic: string): FamilyInfo | undefined {\n\
         \x20 return FAMILIES.find((family) => family.pattern.test(topic));\n\
         }\n\n\
         /**\n\
         \x20* Whether a topic built at run time (e.g. `sessions.activity:${id}`) follows the grammar\n\
         \x20* and belongs to a family: the way from a `string` to a `KnownTopic`.\n\
         \x20*/\n\
         export function isKnownTopic(topic: string): topic is KnownTopic {\n\
         \x20 return topic.length <= MAX_TOPIC_LEN && TOPIC_PATTERN.test(topic) && familyOf(topic) !== undefined;\n\
         }\n",
    );
    out
}

/// The `index.ts` barrel over `files` (the output of every generator of one run): `export *`
/// for the runtime modules ([`VALUE_MODULES`] and those of [`EXTRA_MODULES`] that exist),
/// `export type *` for every other module in `generated/typescript`.
pub(crate) fn barrel(files: &[GeneratedFile]) -> Result<GeneratedFile> {
    let prefix = format!("{DIR}/");
    let modules: Vec<&str> = files
        .iter()
        .filter_map(|f| f.path().strip_prefix(&prefix)?.strip_suffix(".ts"))
        .collect();
    let mut out = String::new();
    let values = VALUE_MODULES
        .iter()
        .chain(EXTRA_MODULES.iter().filter(|m| modules.contains(m)));
    for module in values {
        let _ = writeln!(out, "export * from \"./{module}.{IMPORT_EXTENSION}\";");
    }
    let mut types: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|m| !VALUE_MODULES.contains(m) && !EXTRA_MODULES.contains(m))
        // ErrorCode is re-exported by codes.ts together with its runtime values.
        .filter(|m| *m != "index" && *m != ERROR_CODE_MODULE)
        .collect();
    types.sort_unstable();
    for module in types {
        let _ = writeln!(out, "export type * from \"./{module}.{IMPORT_EXTENSION}\";");
    }
    GeneratedFile::new(format!("{DIR}/index.ts"), Body::text(out))
}

/// Generates `generated/typescript/**` except the barrel, which [`barrel`] writes once every
/// generator has run.
pub fn generate() -> Result<Vec<GeneratedFile>> {
    let mut collect = Collect {
        cfg: Config::default().with_import_extension(Some(IMPORT_EXTENSION)),
        seen: HashSet::new(),
        modules: BTreeMap::new(),
        error: None,
    };
    collect.visit::<ClientMessage>();
    collect.visit::<ServerMessage>();
    collect.visit::<ErrorCode>();
    let mut families = Families {
        collect: &mut collect,
        out: Vec::new(),
    };
    visit_families(&mut families);
    let families = families.out;
    if let Some(error) = collect.error {
        return Err(error);
    }
    let mut files = collect
        .modules
        .into_iter()
        .map(|(module, body)| GeneratedFile::new(format!("{DIR}/{module}.ts"), Body::text(body)))
        .collect::<Result<Vec<_>>>()?;
    for (module, body) in [
        ("codes", codes_ts()),
        ("constants", constants_ts()),
        ("topics", topics_ts(&families)),
    ] {
        files.push(GeneratedFile::new(
            format!("{DIR}/{module}.ts"),
            Body::text(body),
        )?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> GeneratedFile {
        let body = if path.ends_with(".json") {
            Body::json(serde_json::json!({}))
        } else {
            Body::text("")
        };
        GeneratedFile::new(path, body).expect("a file with a known extension")
    }

    #[test]
    fn barrel_exports_only_the_extra_modules_that_were_generated() {
        let mut files = vec![
            file("generated/typescript/codes.ts"),
            file("generated/typescript/ErrorCode.ts"),
            file("generated/typescript/Seq.ts"),
            file("generated/typescript/serde_json/JsonValue.ts"),
            file("generated/schema/Seq.schema.json"),
        ];
        let without = barrel(&files).unwrap().contents().to_owned();
        for extra in EXTRA_MODULES {
            assert!(
                !without.contains(&format!("./{extra}.js")),
                "barrel exports {extra} although no generator wrote it:\n{without}"
            );
        }
        files.push(file("generated/typescript/decode.ts"));
        let with = barrel(&files).unwrap().contents().to_owned();
        assert!(
            with.contains("export * from \"./decode.js\";\n"),
            "barrel does not export the generated decode.ts as values:\n{with}"
        );
        assert!(
            !with.contains("./fold.js"),
            "barrel exports fold.ts, which was not generated:\n{with}"
        );
    }

    #[test]
    fn barrel_exports_types_with_js_extensions_and_skips_itself() {
        let files = [
            file("generated/typescript/index.ts"),
            file("generated/typescript/ErrorCode.ts"),
            file("generated/typescript/Seq.ts"),
            file("generated/typescript/serde_json/JsonValue.ts"),
        ];
        let out = barrel(&files).unwrap().contents().to_owned();
        for line in [
            "export * from \"./codes.js\";",
            "export * from \"./topics.js\";",
            "export type * from \"./Seq.js\";",
            "export type * from \"./serde_json/JsonValue.js\";",
        ] {
            assert!(out.contains(line), "barrel lacks `{line}`:\n{out}");
        }
        for absent in ["./index.js", "./ErrorCode.js", "schema"] {
            assert!(!out.contains(absent), "barrel mentions {absent}:\n{out}");
        }
    }

    #[test]
    fn every_generated_relative_import_ends_in_js() {
        let files = generate().expect("the TypeScript generator succeeds");
        for f in &files {
            for line in f.contents().lines().filter(|l| l.contains(" from \"")) {
                let target = line.split(" from \"").nth(1).unwrap_or_default();
                assert!(
                    !target.starts_with('.') || target.ends_with(".js\";"),
                    "{}: relative import without a .js extension: {line}",
                    f.path()
                );
            }
        }
    }
}
