//! The tidy test: house rules that check themselves on every plain `cargo test -p xtask`, in the
//! manner of rust-analyzer's `xtask/src/tidy.rs`.
//!
//! Each rule is a pure function over a file's text (or, for the architecture document, over a
//! list of the repository's paths), with a unit test proving that it fails on a violation; the
//! `#[test]`s at the end apply the rules to the repository. The files checked are the
//! repository's, without `target/`, `node_modules/` and dot-directories.
//!
//! - **module-doc**: every `.rs` file opens with a `//!` line saying what it is for.
//! - **wire-serde**: the protocol crate is the only place that declares wire types, so nothing
//!   outside `protocol/` derives `Serialize` or `Deserialize` for a copy of a wire envelope.
//!   Non-wire formats (server config, transcript case files, the testee contract, reports, bench
//!   results) derive serde legitimately, so the rule does not forbid serde; it forbids spelling
//!   the wire. A serde type outside `protocol/` fails when a key it (de)serializes is one of the
//!   wire names that Rust cannot spell without help: the envelope discriminator `type` (a Rust
//!   keyword, so a copy needs `tag = "type"`, `rename = "type"` or an `r#type` field) and every
//!   camelCase property of the published direction schemas (`isReplay`, `resumeAfter`, …,
//!   read from `generated/schema/`). Keys are what serde would write: explicit `rename`,
//!   `alias`, `tag` and `content` values, and field names under `rename_all` /
//!   `rename_all_fields`. A copy that reads which message a frame is needs `type`, so it is
//!   caught; a copy of only a part whose fields Rust spells as the wire does (`topic`, `seq`)
//!   is not, and review still has to catch that. A file that breaks the rule for a good reason goes in
//!   [`WIRE_SERDE_EXCEPTIONS`] with the reason; an entry that no longer matches a violation
//!   fails the test, so the list cannot go stale.
//! - **generated-header**: every generated file (everything under `generated/`, and every file
//!   `xtask::codegen::all_files` writes elsewhere) starts with `rtbus_codegen::HEADER` in its
//!   format's comment syntax.
//! - **architecture-paths**: every path ARCHITECTURE.md names in backticks exists. A path with a
//!   `/` is looked up from the root and from each directory the section named before it (its
//!   heading's crate, `src/` below it, directories named earlier in the section); a bare file
//!   name (`hub.rs`) must exist somewhere below one of them. [`ARCHITECTURE_NOT_HERE`] lists the
//!   names that are not this repository's files, each with the reason.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::Path;

use rtbus_codegen::HEADER;
use syn::visit::Visit;

/// Files allowed to break the wire-serde rule, each with the reason. An entry whose file has no
/// violation (or no longer exists) fails the test: remove it then.
const WIRE_SERDE_EXCEPTIONS: &[(&str, &str)] = &[];

/// Names in ARCHITECTURE.md's backticks that look like paths but are not this repository's
/// files, each with the reason. An entry the document no longer mentions fails the test.
const ARCHITECTURE_NOT_HERE: &[(&str, &str)] = &[
    (
        "architecture.md",
        "rust-analyzer's document, named as the model",
    ),
    (
        "dist/",
        "the npm packages' build output, ignored by git and present only after a build",
    ),
];

/// The file extensions that make a bare backticked name a path.
const PATH_EXTENSIONS: &[&str] = &[
    "rs", "md", "toml", "json", "ts", "mjs", "js", "sh", "yml", "yaml", "lock", "html",
];

/// One rule broken at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    path: String,
    message: String,
}

impl Violation {
    fn new(path: &str, message: impl Into<String>) -> Violation {
        Violation {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Fails with every violation, one per line, under `rule`'s explanation.
fn assert_none(rule: &str, violations: &[Violation]) {
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{rule}\n\n{}\n", lines.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The repository's files.

/// Every file and directory of the repository, relative to the root with `/` separators, without
/// `target/`, `node_modules/` and dot-directories; directories end with `/`.
fn repository_paths(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                if name.starts_with('.') || name == "target" || name == "node_modules" {
                    continue;
                }
                out.insert(format!("{relative}/"));
                walk(root, &path, out);
            } else {
                out.insert(relative);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn read(root: &Path, relative: &str) -> String {
    fs::read_to_string(root.join(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// module-doc

/// A violation when `text` (a `.rs` file) does not open with a `//!` line.
fn module_doc(path: &str, text: &str) -> Option<Violation> {
    if text.starts_with("//!") {
        return None;
    }
    Some(Violation::new(
        path,
        "does not open with a `//!` line saying what the file is for",
    ))
}

// ---------------------------------------------------------------------------------------------
// wire-serde

/// The wire names Rust cannot spell without a serde attribute: `type`, and every property name
/// of `schemas` (JSON Schemas) that holds an uppercase letter.
fn wire_vocabulary(schemas: &[serde_json::Value]) -> BTreeSet<String> {
    fn walk(value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                    out.extend(
                        properties
                            .keys()
                            .filter(|k| k.chars().any(|c| c.is_ascii_uppercase()))
                            .cloned(),
                    );
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::from(["type".to_owned()]);
    for schema in schemas {
        walk(schema, &mut out);
    }
    out
}

/// The `key = "value"` pairs of the `#[serde(...)]` attributes in `attrs`; a nested pair such
/// as `rename(serialize = "a")` is reported under the outer key (`rename`, `"a"`).
fn serde_pairs(attrs: &[syn::Attribute]) -> syn::Result<Vec<(String, String)>> {
    fn visit(
        meta: syn::meta::ParseNestedMeta<'_>,
        outer: Option<&str>,
        out: &mut Vec<(String, String)>,
    ) -> syn::Result<()> {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let key = outer.map_or(key, str::to_owned);
        if meta.input.peek(syn::Token![=]) {
            let value: syn::Expr = meta.value()?.parse()?;
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) = value
            {
                out.push((key, text.value()));
            }
        } else if meta.input.peek(syn::token::Paren) {
            meta.parse_nested_meta(|inner| visit(inner, Some(&key), out))?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| visit(meta, None, &mut out))?;
    }
    Ok(out)
}

fn derives_serde(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|meta| {
                let last = meta.path.segments.last().map(|s| s.ident.to_string());
                found |= matches!(last.as_deref(), Some("Serialize" | "Deserialize"));
                Ok(())
            });
            found
        })
}

/// `ident` (snake_case) as serde's `rename_all = rule` writes it.
fn rename(ident: &str, rule: Option<&str>) -> String {
    let words: Vec<&str> = ident.split('_').filter(|w| !w.is_empty()).collect();
    let capitalized = |w: &str| {
        let mut chars = w.chars();
        chars.next().map_or_else(String::new, |c| {
            c.to_uppercase().collect::<String>() + chars.as_str()
        })
    };
    match rule {
        Some("camelCase") => words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    (*w).to_owned()
                } else {
                    capitalized(w)
                }
            })
            .collect(),
        Some("PascalCase") => words.iter().map(|w| capitalized(w)).collect(),
        Some("lowercase") => ident.to_lowercase(),
        Some("UPPERCASE" | "SCREAMING_SNAKE_CASE") => ident.to_uppercase(),
        Some("kebab-case") => ident.replace('_', "-"),
        Some("SCREAMING-KEBAB-CASE") => ident.replace('_', "-").to_uppercase(),
        _ => ident.to_owned(),
    }
}

/// One key a serde type (de)serializes, and where in the type it comes from.
struct Key {
    key: String,
    place: String,
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The keys of named `fields`, named as `rule` writes them unless a field renames itself.
fn field_keys(
    fields: &syn::Fields,
    rule: Option<&str>,
    owner: &str,
    out: &mut Vec<Key>,
) -> syn::Result<()> {
    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let ident = ident.to_string();
        let ident = ident.trim_start_matches("r#");
        let place = format!("{owner}.{ident}");
        let pairs = serde_pairs(&field.attrs)?;
        let mut explicit = false;
        for (k, v) in &pairs {
            if k == "rename" || k == "alias" {
                explicit |= k == "rename";
                out.push(Key {
                    key: v.clone(),
                    place: place.clone(),
                });
            }
        }
        if !explicit {
            out.push(Key {
                key: rename(ident, rule),
                place,
            });
        }
    }
    Ok(())
}

/// Every key the serde types in `file` (de)serialize, with where each comes from.
fn serde_keys(file: &syn::File) -> syn::Result<Vec<Key>> {
    struct Collect {
        keys: Vec<Key>,
        error: Option<syn::Error>,
    }
    impl Collect {
        fn container(
            &mut self,
            attrs: &[syn::Attribute],
            name: &str,
        ) -> Option<Vec<(String, String)>> {
            if !derives_serde(attrs) {
                return None;
            }
            match serde_pairs(attrs) {
                Ok(pairs) => {
                    for (k, v) in &pairs {
                        if matches!(k.as_str(), "rename" | "alias" | "tag" | "content") {
                            self.keys.push(Key {
                                key: v.clone(),
                                place: format!("{name} ({k})"),
                            });
                        }
                    }
                    Some(pairs)
                }
                Err(e) => {
                    self.error.get_or_insert(e);
                    None
                }
            }
        }
    }
    impl<'ast> Visit<'ast> for Collect {
        fn visit_item_struct(&mut self, item: &'ast syn::ItemStruct) {
            let name = item.ident.to_string();
            if let Some(pairs) = self.container(&item.attrs, &name) {
                let rule = first(&pairs, "rename_all");
                if let Err(e) = field_keys(&item.fields, rule, &name, &mut self.keys) {
                    self.error.get_or_insert(e);
                }
            }
            syn::visit::visit_item_struct(self, item);
        }

        fn visit_item_enum(&mut self, item: &'ast syn::ItemEnum) {
            let name = item.ident.to_string();
            if let Some(pairs) = self.container(&item.attrs, &name) {
                let fields_rule = first(&pairs, "rename_all_fields");
                for variant in &item.variants {
                    let owner = format!("{name}::{}", variant.ident);
                    let result = serde_pairs(&variant.attrs).and_then(|own| {
                        for (k, v) in &own {
                            if k == "rename" || k == "alias" {
                                self.keys.push(Key {
                                    key: v.clone(),
                                    place: format!("{owner} ({k})"),
                                });
                            }
                        }
                        let rule = first(&own, "rename_all").or(fields_rule);
                        field_keys(&variant.fields, rule, &owner, &mut self.keys)
                    });
                    if let Err(e) = result {
                        self.error.get_or_insert(e);
                    }
                }
            }
            syn::visit::visit_item_enum(self, item);
        }
    }
    let mut collect = Collect {
        keys: Vec::new(),
        error: None,
    };
    collect.visit_file(file);
    match collect.error {
        Some(e) => Err(e),
        None => Ok(collect.keys),
    }
}

/// The wire-serde violations of `text` (a `.rs` file outside `protocol/`).
fn wire_serde(path: &str, text: &str, vocabulary: &BTreeSet<String>) -> Vec<Violation> {
    let keys = syn::parse_file(text).and_then(|file| serde_keys(&file));
    match keys {
        Err(e) => vec![Violation::new(path, format!("does not parse: {e}"))],
        Ok(keys) => keys
            .into_iter()
            .filter(|k| vocabulary.contains(&k.key))
            .map(|k| {
                Violation::new(
                    path,
                    format!(
                        "{} derives serde and spells the wire name `{}`: wire types are \
                         declared in the protocol crate only",
                        k.place, k.key
                    ),
                )
            })
            .collect(),
    }
}

/// The exceptions of `exceptions` that excuse nothing in `violations`.
fn stale_exceptions<'a>(
    exceptions: &'a [(&'a str, &'a str)],
    violations: &[Violation],
) -> Vec<&'a str> {
    exceptions
        .iter()
        .map(|(path, _)| *path)
        .filter(|path| !violations.iter().any(|v| v.path == *path))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// generated-header

/// The text a generated file at `path` must start with, by its format; `None` for a format
/// with no known comment syntax.
fn expected_header(path: &str) -> Option<String> {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("ts") => Some(format!("// {HEADER}\n")),
        Some("md") => Some(format!("<!-- {HEADER}")),
        Some("json") => Some(format!("{{\n  \"$comment\": \"{HEADER}")),
        Some("yaml" | "yml") => Some(format!("# {HEADER}")),
        _ => None,
    }
}

/// A violation when `text` (a generated file at `path`) does not start with the header.
fn generated_header(path: &str, text: &str) -> Option<Violation> {
    match expected_header(path) {
        None => Some(Violation::new(
            path,
            "is generated, but no header syntax is known for its file type",
        )),
        Some(header) if text.starts_with(&header) => None,
        Some(header) => Some(Violation::new(
            path,
            format!(
                "is generated but does not start with the header `{}`",
                header.trim_end()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// architecture-paths

/// Whether a backticked `token` names a path: path characters only (a placeholder such as
/// `<id>` ends the checked part), not absolute (`/healthz`, `/proc` are URLs and system paths),
/// and with a `/` or a known file extension.
fn as_path(token: &str) -> Option<&str> {
    let end = token.find('<').unwrap_or(token.len());
    let checked = &token[..end];
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_-./".contains(c);
    if checked.is_empty()
        || !token[end..]
            .chars()
            .all(|c| is_path_char(c) || c == '<' || c == '>')
        || !checked.chars().all(is_path_char)
        || checked.starts_with('/')
        || checked.starts_with('.')
        || checked.contains("//")
    {
        return None;
    }
    let has_extension = checked
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && PATH_EXTENSIONS.contains(&ext));
    (checked.contains('/') || has_extension).then_some(checked)
}

/// Whether `path` (relative, maybe ending in `/`) is in `tree` as a file or a directory.
fn in_tree(tree: &BTreeSet<String>, path: &str) -> bool {
    let bare = path.trim_end_matches('/');
    tree.contains(bare) || tree.contains(&format!("{bare}/"))
}

/// The violations of `text` (ARCHITECTURE.md) against `tree` (the repository's paths, as
/// [`repository_paths`] lists them).
fn architecture_paths(path: &str, text: &str, tree: &BTreeSet<String>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    let mut in_fence = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if line.starts_with('#') {
            bases.clear();
        }
        for token in line.split('`').skip(1).step_by(2) {
            if ARCHITECTURE_NOT_HERE.iter().any(|(name, _)| *name == token) {
                continue;
            }
            let Some(named) = as_path(token) else {
                continue;
            };
            let named = named.trim_end_matches('/');
            let found = if named.contains('/') {
                in_tree(tree, named)
                    || bases.iter().any(|base| {
                        in_tree(tree, &format!("{base}/{named}"))
                            || in_tree(tree, &format!("{base}/src/{named}"))
                    })
            } else {
                in_tree(tree, named)
                    || bases.iter().any(|base| {
                        tree.iter().any(|p| {
                            p.starts_with(&format!("{base}/"))
                                && (p.ends_with(&format!("/{named}"))
                                    || p.ends_with(&format!("/{named}/")))
                        })
                    })
            };
            if !found {
                out.push(Violation::new(
                    &format!("{path}:{}", number + 1),
                    format!("names `{token}`, which does not exist"),
                ));
                continue;
            }
            // A directory named here is where the rest of the section's names are looked up.
            let resolved = [named.to_owned()]
                .into_iter()
                .chain(bases.iter().map(|b| format!("{b}/{named}")))
                .find(|p| tree.contains(&format!("{p}/")));
            if let Some(dir) = resolved {
                if !bases.contains(&dir) {
                    bases.push(dir);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The rules applied to the repository.

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = crate::project_root();
    let violations: Vec<Violation> = repository_paths(&root)
        .iter()
        .filter(|p| p.ends_with(".rs"))
        .filter_map(|p| module_doc(p, &read(&root, p)))
        .collect();
    assert_none("module-doc: every .rs file opens with `//!`.", &violations);
}

#[test]
fn no_wire_envelope_derives_serde_outside_protocol() {
    let root = crate::project_root();
    let schemas: Vec<serde_json::Value> = [
        "generated/schema/client-to-server.schema.json",
        "generated/schema/server-to-client.schema.json",
    ]
    .iter()
    .map(|p| serde_json::from_str(&read(&root, p)).unwrap_or_else(|e| panic!("{p}: {e}")))
    .collect();
    let vocabulary = wire_vocabulary(&schemas);
    assert!(vocabulary.contains("isReplay"), "{vocabulary:?}");
    let violations: Vec<Violation> = repository_paths(&root)
        .iter()
        .filter(|p| p.ends_with(".rs") && !p.starts_with("protocol/"))
        .flat_map(|p| wire_serde(p, &read(&root, p), &vocabulary))
        .collect();
    let stale = stale_exceptions(WIRE_SERDE_EXCEPTIONS, &violations);
    let mut problems: Vec<Violation> = violations
        .into_iter()
        .filter(|v| !WIRE_SERDE_EXCEPTIONS.iter().any(|(p, _)| *p == v.path))
        .collect();
    problems.extend(stale.into_iter().map(|path| {
        Violation::new(
            path,
            "is listed in WIRE_SERDE_EXCEPTIONS but breaks the rule no more: remove the entry",
        )
    }));
    assert_none(
        "wire-serde: outside protocol/, a serde type must not spell the wire; use the \
         protocol crate's types (or list the file in WIRE_SERDE_EXCEPTIONS with a reason).",
        &problems,
    );
}

#[test]
fn every_generated_file_starts_with_the_header() {
    let root = crate::project_root();
    let mut generated: BTreeSet<String> = repository_paths(&root)
        .into_iter()
        .filter(|p| p.starts_with("generated/") && !p.ends_with('/'))
        .collect();
    let written = crate::codegen::all_files().unwrap_or_else(|e| panic!("codegen: {e:#}"));
    generated.extend(written.iter().map(|f| f.path().to_owned()));
    assert!(generated.len() > 40, "{generated:?}");
    let violations: Vec<Violation> = generated
        .iter()
        .filter_map(|p| match fs::read_to_string(root.join(p)) {
            Ok(text) => generated_header(p, &text),
            Err(e) => Some(Violation::new(p, format!("cannot be read: {e}"))),
        })
        .collect();
    assert_none(
        "generated-header: every generated file starts with rtbus_codegen::HEADER.",
        &violations,
    );
}

#[test]
fn every_path_in_architecture_md_exists() {
    let root = crate::project_root();
    let text = read(&root, "ARCHITECTURE.md");
    let stale: Vec<&str> = ARCHITECTURE_NOT_HERE
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !text.contains(&format!("`{name}`")))
        .collect();
    assert!(
        stale.is_empty(),
        "architecture-paths: ARCHITECTURE.md no longer names these ARCHITECTURE_NOT_HERE \
         entries; remove them: {stale:?}"
    );
    let violations = architecture_paths("ARCHITECTURE.md", &text, &repository_paths(&root));
    assert_none(
        "architecture-paths: every path ARCHITECTURE.md names exists.",
        &violations,
    );
}

// ---------------------------------------------------------------------------------------------
// Each rule fails on a violation.

mod rules_fail_on_violations {
    use super::*;

    fn vocabulary() -> BTreeSet<String> {
        wire_vocabulary(&[serde_json::json!({
            "properties": {"type": {}, "data": {
                "properties": {"topic": {}, "isReplay": {}, "resumeAfter": {}}
            }}
        })])
    }

    #[test]
    fn module_doc_requires_the_first_line() {
        assert_eq!(module_doc("a.rs", "//! What this is.\nfn f() {}\n"), None);
        for text in [
            "use std::fs;\n",
            "",
            "#![deny(missing_docs)]\n//! Late.\n",
            "/// Item doc.\n",
        ] {
            assert!(module_doc("a.rs", text).is_some(), "{text:?} passed");
        }
    }

    #[test]
    fn the_vocabulary_is_type_and_the_camel_case_properties() {
        let names: Vec<String> = vocabulary().into_iter().collect();
        assert_eq!(names, ["isReplay", "resumeAfter", "type"]);
    }

    #[test]
    fn wire_serde_catches_a_hand_copied_envelope() {
        let copy = r#"
            //! A copy.
            #[derive(Deserialize)]
            struct FrameView<'a> {
                #[serde(rename = "type", borrow)]
                kind: Cow<'a, str>,
                data: Option<DataView>,
            }
            #[derive(serde::Deserialize)]
            struct DataView {
                topic: String,
                #[serde(default, rename = "isReplay")]
                is_replay: Option<bool>,
            }
        "#;
        let found = wire_serde("x.rs", copy, &vocabulary());
        let messages: Vec<&str> = found.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(found.len(), 2, "{messages:?}");
        assert!(messages[0].contains("FrameView.kind") && messages[0].contains("`type`"));
        assert!(messages[1].contains("DataView.is_replay") && messages[1].contains("`isReplay`"));
    }

    #[test]
    fn wire_serde_sees_tags_rename_all_and_raw_identifiers() {
        let cases = [
            (
                "#[derive(Serialize)] #[serde(tag = \"type\", rename_all = \"camelCase\")] \
                 enum Msg { Subscribe { topic: String } }",
                "Msg (tag)",
            ),
            (
                "#[derive(Deserialize)] #[serde(rename_all = \"camelCase\")] \
                 struct Data { resume_after: u64 }",
                "Data.resume_after",
            ),
            (
                "#[derive(Deserialize)] struct Frame { r#type: String }",
                "Frame.type",
            ),
            (
                "#[derive(Deserialize)] #[serde(tag = \"do\", rename_all_fields = \"camelCase\")] \
                 enum Step { Expect { is_replay: bool } }",
                "Step::Expect.is_replay",
            ),
            (
                "fn f() { #[derive(Deserialize)] struct Inner { #[serde(alias = \"isReplay\")] r: bool } }",
                "Inner.r",
            ),
        ];
        for (source, place) in cases {
            let found = wire_serde("x.rs", source, &vocabulary());
            assert_eq!(found.len(), 1, "{source}: {found:?}");
            assert!(found[0].message.starts_with(place), "{source}: {found:?}");
        }
    }

    #[test]
    fn wire_serde_allows_non_wire_formats_and_plain_types() {
        let fine = r#"
            #[derive(Serialize, Deserialize)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            struct Contract { listen: String, command_timeout_ms: u64 }
            #[derive(Serialize)]
            #[serde(tag = "verdict", rename_all = "camelCase")]
            enum Verdict { Passed, Failed { reason: String } }
            // Not serde: any field names.
            struct Delivery { is_replay: bool, r#type: u8 }
        "#;
        assert_eq!(wire_serde("x.rs", fine, &vocabulary()), []);
        assert_eq!(
            wire_serde("x.rs", "fn (", &vocabulary()).len(),
            1,
            "a file that does not parse is reported"
        );
    }

    #[test]
    fn an_exception_that_excuses_nothing_is_stale() {
        let violations = [Violation::new("a.rs", "x")];
        let exceptions = [("a.rs", "why"), ("b.rs", "why")];
        assert_eq!(stale_exceptions(&exceptions, &violations), ["b.rs"]);
    }

    #[test]
    fn generated_header_is_checked_per_format() {
        for (path, text) in [
            ("generated/a.ts", format!("// {HEADER}\n\nexport {{}};\n")),
            ("generated/A.md", format!("<!-- {HEADER} -->\n\n# A\n")),
            (
                "generated/a.json",
                format!("{{\n  \"$comment\": \"{HEADER}\",\n  \"a\": 1\n}}\n"),
            ),
            ("generated/a.yaml", format!("# {HEADER}\n\n{{}}\n")),
        ] {
            assert_eq!(generated_header(path, &text), None, "{path}");
        }
        for (path, text) in [
            ("generated/a.ts", "export {};\n".to_owned()),
            (
                "generated/CONFORMANCE.md",
                "<!-- Generated by `cargo xtask codegen`, do not edit. -->\n".to_owned(),
            ),
            (
                "generated/a.json",
                format!("{{\n  \"a\": 1,\n  \"$comment\": \"{HEADER}\"\n}}\n"),
            ),
            ("generated/a.js", format!("// {HEADER}\n")),
            ("generated/a.yaml", "{}\n".to_owned()),
        ] {
            assert!(generated_header(path, &text).is_some(), "{path} passed");
        }
    }

    #[test]
    fn architecture_paths_resolve_from_the_section_and_fail_when_missing() {
        let tree: BTreeSet<String> = [
            "server/",
            "server/src/",
            "server/src/hub.rs",
            "packages/",
            "packages/client/",
            "packages/client/test/",
            "packages/client/test/faults.mjs",
            "generated/",
            "generated/PROTOCOL.md",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let text = "\
# Title

`generated/PROTOCOL.md`, `/healthz`, `xtask::codegen::all_files`, `80.0`, `--check`, `.js`.

```
`gone/in/a/fence.rs`
```

### `server/` (rtbus-server)

`hub.rs` holds topics; `conn.rs` is gone; `src/hub.rs` and `server/src/missing.rs`.

### `packages/`

`client/test/` runs `faults.mjs`; `hub.rs` is not in this section. `generated/<id>.json`.
";
        let found = architecture_paths("ARCH.md", text, &tree);
        let named: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            named,
            [
                "ARCH.md:11: names `conn.rs`, which does not exist",
                "ARCH.md:11: names `server/src/missing.rs`, which does not exist",
                "ARCH.md:15: names `hub.rs`, which does not exist",
            ]
        );
    }
}
