//! `generated/typescript/fold.ts`: every family's fold rule as data (`FOLDS`), typed against the
//! family's payload types, and a small interpreter of it (`emptySnapshot`, `foldEvent`) that
//! folds exactly as the server's [`Fold::apply`](rtbus_protocol::catalog::Fold::apply) does.
//!
//! `codegen/tests/fold_agreement.rs` runs the output under Node against the Rust fold.

use std::fmt::Write as _;

use rtbus_protocol::catalog::{Family, FieldIs, Fold, Order};

use crate::{Body, GeneratedFile, Result};

/// A JavaScript string literal.
fn js_string(text: &str) -> String {
    // JSON string syntax is a subset of JavaScript's; serializing a `&str` cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The rule as a TypeScript object literal, matching the `FoldRule` types below.
fn rule_literal(fold: Fold) -> String {
    match fold {
        Fold::Latest => "{ kind: \"latest\" }".to_owned(),
        Fold::Upsert {
            list,
            key,
            order,
            remove_when,
        } => {
            let order = match order {
                Order::KeyAscending => "keyAscending",
            };
            let remove_when = match remove_when {
                Some(FieldIs { field, value }) => format!(
                    "{{ field: {}, equals: {} }}",
                    js_string(field),
                    js_string(value)
                ),
                None => "null".to_owned(),
            };
            format!(
                "{{ kind: \"upsert\", list: {}, key: {}, order: {}, removeWhen: {remove_when} }}",
                js_string(list),
                js_string(key),
                js_string(order)
            )
        }
        Fold::Append { list, cap } => {
            format!(
                "{{ kind: \"append\", list: {}, cap: {cap} }}",
                js_string(list)
            )
        }
    }
}

/// The rule types, the interpreter and the exported functions: the part of `fold.ts` that does
/// not depend on the catalog.
const INTERPRETER: &str = r#"/** The fields of `T` that are always present and hold a string (or a string union). */
type RequiredStringField<T> = {
  [K in keyof T]-?: {} extends Pick<T, K> ? never : T[K] extends string ? K : never;
}[keyof T] &
  string;

/** The fields of snapshot type `S` that hold a list of events of type `E`. */
type ListField<S, E> = {
  [K in keyof S]-?: S[K] extends readonly E[] ? (E[] extends S[K] ? K : never) : never;
}[keyof S] &
  string;

/** The snapshot is the latest event's payload (`null` before the first event). */
export interface LatestRule {
  readonly kind: "latest";
}

/**
 * The snapshot holds one list, `list`, with at most one entry per `key`, ordered by `key`
 * (`keyAscending`: compared by Unicode code point, as the server compares them). The event
 * replaces the entry with its key or is inserted in order; an event whose field
 * `removeWhen.field` is `removeWhen.equals` removes the entry instead.
 */
export interface UpsertRule<S, E> {
  readonly kind: "upsert";
  readonly list: ListField<S, E>;
  readonly key: RequiredStringField<E>;
  readonly order: "keyAscending";
  readonly removeWhen: { [K in keyof E]-?: E[K] extends string | undefined ? { readonly field: K; readonly equals: Exclude<E[K], undefined> } : never }[keyof E] | null;
}

/** The snapshot holds one list, `list`, of the latest `cap` events, oldest first. */
export interface AppendRule<S, E> {
  readonly kind: "append";
  readonly list: ListField<S, E>;
  readonly cap: number;
}

/** A fold rule for snapshot type `S` and event type `E`; `latest` only when an event is a snapshot. */
export type FoldRule<S, E> = ([E] extends [S] ? LatestRule : never) | UpsertRule<S, E> | AppendRule<S, E>;

/** A fold rule of family `F`, its names checked against the family's payload types. */
export type FamilyFoldRule<F extends FamilyName> = FoldRule<TopicFamilies[F]["snapshot"], TopicFamilies[F]["event"]>;

/** The interpreter's untyped view of a rule. */
type AnyRule =
  | { readonly kind: "latest" }
  | {
      readonly kind: "upsert";
      readonly list: string;
      readonly key: string;
      readonly order: "keyAscending";
      readonly removeWhen: { readonly field: PropertyKey; readonly equals: string } | null;
    }
  | { readonly kind: "append"; readonly list: string; readonly cap: number };

type Entry = { readonly [field: PropertyKey]: unknown };

const RULES: { readonly [F in FamilyName]: AnyRule } = FOLDS;

function ruleOf(family: string): AnyRule {
  const rule: AnyRule | undefined = Object.prototype.hasOwnProperty.call(RULES, family)
    ? RULES[family as FamilyName]
    : undefined;
  if (rule === undefined) {
    throw new TypeError(`fold: unknown family ${JSON.stringify(family)}; expected one of ${Object.keys(RULES).join(", ")}`);
  }
  return rule;
}

/**
 * Compares two strings by Unicode code point, as Rust compares `str`s (by UTF-8 bytes). `<`
 * compares UTF-16 code units instead, which puts U+10000 and above before U+E000..U+FFFF.
 */
function compareKeys(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a.charCodeAt(i) !== b.charCodeAt(i)) {
      // At the first differing unit, whole code points decide (a low surrogate here follows
      // the same high surrogate in both strings, so comparing the units is right too).
      return (a.codePointAt(i) ?? 0) < (b.codePointAt(i) ?? 0) ? -1 : 1;
    }
  }
  return a.length < b.length ? -1 : 1;
}

function entriesOf(family: string, snapshot: unknown, list: string): readonly Entry[] {
  const entries = typeof snapshot === "object" && snapshot !== null ? (snapshot as Entry)[list] : undefined;
  if (!Array.isArray(entries)) {
    throw new TypeError(`fold: a ${family} snapshot must be an object with a list "${list}", found ${JSON.stringify(snapshot)}`);
  }
  return entries as readonly Entry[];
}

function apply(family: string, rule: AnyRule, snapshot: unknown, event: unknown): unknown {
  switch (rule.kind) {
    case "latest":
      return event;
    case "upsert": {
      const entries = entriesOf(family, snapshot, rule.list);
      const fields = event as Entry;
      const key = fields[rule.key];
      if (typeof key !== "string") {
        throw new TypeError(`fold: a ${family} event must have a string "${rule.key}", found ${JSON.stringify(event)}`);
      }
      let lo = 0;
      let hi = entries.length;
      let found = false;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const order = compareKeys(String(entries[mid]?.[rule.key]), key);
        if (order === 0) {
          lo = mid;
          found = true;
          break;
        }
        if (order < 0) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      const remove = rule.removeWhen !== null && fields[rule.removeWhen.field] === rule.removeWhen.equals;
      if (remove && !found) {
        return snapshot;
      }
      const next = entries.slice();
      next.splice(lo, found ? 1 : 0, ...(remove ? [] : [fields]));
      return { ...(snapshot as object), [rule.list]: next };
    }
    case "append": {
      const entries = entriesOf(family, snapshot, rule.list);
      const next = entries.slice(Math.max(0, entries.length + 1 - rule.cap));
      next.push(event as Entry);
      return { ...(snapshot as object), [rule.list]: next };
    }
    default: {
      const unknownRule: never = rule;
      throw new TypeError(`fold: unknown rule ${JSON.stringify(unknownRule)}`);
    }
  }
}

/**
 * The snapshot of a topic of `family` on which nothing was published yet: `null` for a
 * `latest` rule, an object with one empty list otherwise. A new object on every call.
 */
export function emptySnapshot<F extends FamilyName>(family: F): TopicFamilies[F]["snapshot"] {
  const rule = ruleOf(family);
  const empty = rule.kind === "latest" ? null : { [rule.list]: [] };
  return empty as TopicFamilies[F]["snapshot"];
}

/**
 * Folds `event` into `snapshot` by the family's rule (`FOLDS`), exactly as the server folds
 * it into the snapshots it sends. Returns the new snapshot; never mutates its arguments (the
 * new snapshot shares unchanged entries, and the event itself, with them; when the event
 * changes nothing, e.g. it removes an absent entry, it returns `snapshot` itself).
 */
export function foldEvent<F extends FamilyName>(
  family: F,
  snapshot: TopicFamilies[F]["snapshot"],
  event: TopicFamilies[F]["event"],
): TopicFamilies[F]["snapshot"] {
  return apply(family, ruleOf(family), snapshot, event) as TopicFamilies[F]["snapshot"];
}
"#;

fn fold_ts() -> String {
    let mut out = String::from(
        "/**\n * How events fold into snapshots, per topic family: the rules as data (`FOLDS`, the same\n \
         * values the server folds by) and `emptySnapshot` / `foldEvent`, which interpret them.\n \
         */\n\n",
    );
    out.push_str("import type { FamilyName, TopicFamilies } from \"./topics.js\";\n\n");
    out.push_str("/** Every family's fold rule, as the server applies it. */\n");
    out.push_str("export const FOLDS: { readonly [F in FamilyName]: FamilyFoldRule<F> } = {\n");
    for family in Family::ALL {
        let rule = family.fold_rule().replace("*/", "*\\/");
        let _ = writeln!(
            out,
            "  /** {rule} */\n  {}: {},",
            js_string(family.name()),
            rule_literal(family.fold())
        );
    }
    out.push_str("};\n\n");
    out.push_str(INTERPRETER);
    out
}

/// Generates `generated/typescript/fold.ts`.
pub fn generate() -> Result<Vec<GeneratedFile>> {
    Ok(vec![GeneratedFile::new(
        "generated/typescript/fold.ts",
        Body::text(fold_ts()),
    )?])
}
