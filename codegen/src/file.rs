//! One generated file, and the one place that gives it the header and the trailing newline.
//!
//! Every generator hands [`GeneratedFile::new`] a path and a body; the header goes in the comment
//! syntax of the file type (`//` for TypeScript, `<!-- -->` for Markdown, `#` for YAML, the
//! `$comment` key for JSON, which has no comments) and the text ends with exactly one `\n`. The
//! fields are private, so no generator can build a file that skips either.

use serde_json::Value;

use crate::json::to_pretty;
use crate::{Error, HEADER, Result};

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    path: String,
    contents: String,
}

/// What a generator produces for one file, before the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    kind: BodyKind,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum BodyKind {
    Text(String),
    Json(Value),
}

impl Body {
    /// A text body (TypeScript, Markdown), without the header.
    pub fn text(text: impl Into<String>) -> Body {
        Body {
            kind: BodyKind::Text(text.into()),
            note: None,
        }
    }

    /// A JSON document without a `$comment`: the header becomes its `$comment`, and the
    /// document is written as canonical pretty JSON (sorted keys, two-space indent).
    pub fn json(value: Value) -> Body {
        Body {
            kind: BodyKind::Json(value),
            note: None,
        }
    }

    /// A sentence saying what this file is, written in the header after the standard text:
    /// `// <header>\n//\n// <note>` in TypeScript, `"$comment": "<header> <note>"` in JSON.
    pub fn note(mut self, note: impl Into<String>) -> Body {
        self.note = Some(note.into());
        self
    }
}

/// The comment syntax of a generated file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    TypeScript,
    Markdown,
    Json,
    Yaml,
}

impl Syntax {
    fn of(path: &str) -> Result<Syntax> {
        let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
        match extension {
            "ts" => Ok(Syntax::TypeScript),
            "md" => Ok(Syntax::Markdown),
            "json" => Ok(Syntax::Json),
            "yaml" => Ok(Syntax::Yaml),
            _ => Err(Error::File {
                path: path.to_owned(),
                problem: "no header syntax is known for this file type (add it to `Syntax`)",
            }),
        }
    }
}

impl GeneratedFile {
    /// `body` at `path` (relative to the repository root, `/` separators), with the header in
    /// the comment syntax of the file type and exactly one trailing newline.
    ///
    /// Fails when the file type has no known header syntax, when a JSON path gets a text body
    /// or a text path a JSON body, and when the body already carries a header (a generator that
    /// writes its own would otherwise go unnoticed).
    pub fn new(path: impl Into<String>, body: Body) -> Result<GeneratedFile> {
        let path = path.into();
        let fail = |problem| Error::File {
            path: path.clone(),
            problem,
        };
        let syntax = Syntax::of(&path)?;
        let note = body.note.as_deref();
        let mut contents = match (syntax, body.kind) {
            (Syntax::Json, BodyKind::Json(mut value)) => {
                let Some(map) = value.as_object_mut() else {
                    return Err(fail("a generated JSON document must be an object"));
                };
                if map.contains_key("$comment") {
                    return Err(fail(
                        "the body sets its own `$comment`; the header goes there",
                    ));
                }
                let comment = match note {
                    Some(note) => format!("{HEADER} {note}"),
                    None => HEADER.to_owned(),
                };
                map.insert("$comment".into(), comment.into());
                to_pretty(&value)?
            }
            (Syntax::Json, BodyKind::Text(_)) => {
                return Err(fail(
                    "JSON has no comments: pass the document as `Body::json`",
                ));
            }
            (_, BodyKind::Json(_)) => {
                return Err(fail("a JSON body needs a `.json` path"));
            }
            (_, BodyKind::Text(text)) if text.contains(HEADER) => {
                return Err(fail("the body already carries the header"));
            }
            (Syntax::TypeScript, BodyKind::Text(text)) => {
                let mut out = format!("// {HEADER}\n");
                if let Some(note) = note {
                    out.push_str("//\n");
                    for line in note.lines() {
                        out.push_str(format!("// {line}").trim_end());
                        out.push('\n');
                    }
                }
                out.push('\n');
                out.push_str(&text);
                out
            }
            (Syntax::Yaml, BodyKind::Text(text)) => {
                let mut out = format!("# {HEADER}\n");
                if let Some(note) = note {
                    out.push_str("#\n");
                    for line in note.lines() {
                        out.push_str(format!("# {line}").trim_end());
                        out.push('\n');
                    }
                }
                out.push('\n');
                out.push_str(&text);
                out
            }
            (Syntax::Markdown, BodyKind::Text(text)) => {
                let mut out = format!("<!-- {HEADER}");
                if let Some(note) = note {
                    out.push(' ');
                    out.push_str(note);
                }
                out.push_str(" -->\n\n");
                out.push_str(&text);
                out
            }
        };
        let end = contents.trim_end_matches('\n').len();
        contents.truncate(end);
        contents.push('\n');
        Ok(GeneratedFile { path, contents })
    }

    /// The path relative to the repository root, with `/` separators.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full contents: the header, the body, one trailing newline.
    pub fn contents(&self) -> &str {
        &self.contents
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contents(path: &str, body: Body) -> String {
        GeneratedFile::new(path, body)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .contents
    }

    #[test]
    fn yaml_gets_a_hash_comment_and_one_newline() {
        let text = contents("a/b.yaml", Body::text("{\"a\": 1}\n\n"));
        assert_eq!(text, format!("# {HEADER}\n\n{{\"a\": 1}}\n"));
        let text = contents("a/b.yaml", Body::text("a: 1").note("One.\nTwo."));
        assert_eq!(text, format!("# {HEADER}\n#\n# One.\n# Two.\n\na: 1\n"));
    }

    #[test]
    fn typescript_gets_a_line_comment_and_one_newline() {
        let text = contents("a/b.ts", Body::text("export type A = 1;\n\n\n"));
        assert_eq!(text, format!("// {HEADER}\n\nexport type A = 1;\n"));
        let text = contents("a/b.ts", Body::text("export type A = 1;"));
        assert_eq!(text, format!("// {HEADER}\n\nexport type A = 1;\n"));
    }

    #[test]
    fn a_typescript_note_follows_the_header_in_the_same_comment() {
        let text = contents("a/b.ts", Body::text("const a = 1;\n").note("What this is."));
        assert_eq!(
            text,
            format!("// {HEADER}\n//\n// What this is.\n\nconst a = 1;\n")
        );
    }

    #[test]
    fn markdown_gets_an_html_comment() {
        let text = contents("A.md", Body::text("# Title\n"));
        assert_eq!(text, format!("<!-- {HEADER} -->\n\n# Title\n"));
    }

    #[test]
    fn json_gets_the_header_as_its_first_key() {
        let text = contents("a.json", Body::json(json!({"b": 1, "a": 2})));
        assert_eq!(
            text,
            format!("{{\n  \"$comment\": \"{HEADER}\",\n  \"a\": 2,\n  \"b\": 1\n}}\n")
        );
        let text = contents("a.json", Body::json(json!({})).note("A copy."));
        assert!(text.contains(&format!("\"$comment\": \"{HEADER} A copy.\"")));
    }

    #[test]
    fn a_body_cannot_bring_its_own_header_or_the_wrong_syntax() {
        let refused = [
            ("a.ts", Body::text(format!("// {HEADER}\n\nx"))),
            ("a.json", Body::json(json!({"$comment": "mine"}))),
            ("a.json", Body::json(json!([1]))),
            ("a.json", Body::text("{}")),
            ("a.ts", Body::json(json!({}))),
            ("a.txt", Body::text("x")),
        ];
        for (path, body) in refused {
            let result = GeneratedFile::new(path, body.clone());
            assert!(
                matches!(result, Err(Error::File { .. })),
                "{path} {body:?} gave {result:?}"
            );
        }
    }
}
