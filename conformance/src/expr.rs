//! Integer expressions over captured values and contract limits, e.g. `snap + 1`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A count or a duration: a number, or an expression such as `"historyPerTopic + 2"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Count {
    /// A literal.
    Number(u64),
    /// An expression over variables (see [`Expr`]).
    Expr(String),
}

/// Variables an expression or template may read: captures, contract limits, the run nonce.
pub type Vars = BTreeMap<String, Value>;

/// A parsed expression: integer literals and variable names joined by `+` and `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    terms: Vec<(i64, Term)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Literal(i64),
    Var(String),
}

/// An expression that does not parse or cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

impl Expr {
    /// Parses `name`, `name + 1`, `maxTopicsPerConnection + 1 - 2`, `42`.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut terms = Vec::new();
        let mut sign = 1;
        let mut expect_term = true;
        for token in tokens(text) {
            match (token, expect_term) {
                ("+", false) => {
                    sign = 1;
                    expect_term = true;
                }
                ("-", false) => {
                    sign = -1;
                    expect_term = true;
                }
                (t, true) if t != "+" && t != "-" => {
                    let term = if t.chars().all(|c| c.is_ascii_digit()) {
                        Term::Literal(t.parse().map_err(|_| {
                            ExprError(format!("number {t:?} in {text:?} is too large"))
                        })?)
                    } else if t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                        && t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    {
                        Term::Var(t.to_owned())
                    } else {
                        return Err(ExprError(format!(
                            "unexpected {t:?} in expression {text:?}; expected a number or a variable name"
                        )));
                    };
                    terms.push((sign, term));
                    expect_term = false;
                }
                (t, _) => {
                    return Err(ExprError(format!(
                        "unexpected {t:?} in expression {text:?}; expected {}",
                        if expect_term {
                            "a number or a variable name"
                        } else {
                            "'+' or '-'"
                        }
                    )));
                }
            }
        }
        if expect_term {
            return Err(ExprError(format!(
                "expression {text:?} is incomplete; expected a number or a variable name"
            )));
        }
        Ok(Expr { terms })
    }

    /// Evaluates the expression; variables must hold integers.
    pub fn eval(&self, vars: &Vars) -> Result<i64, ExprError> {
        let mut total: i64 = 0;
        for (sign, term) in &self.terms {
            let value = match term {
                Term::Literal(n) => *n,
                Term::Var(name) => match vars.get(name) {
                    Some(v) => v.as_i64().ok_or_else(|| {
                        ExprError(format!("variable {name:?} is {v}, not an integer"))
                    })?,
                    None => {
                        return Err(ExprError(format!(
                            "variable {name:?} is not set (not captured yet, and not a contract value)"
                        )));
                    }
                },
            };
            total = total.saturating_add(sign * value);
        }
        Ok(total)
    }

    /// The expression is a single variable name.
    pub fn as_var(&self) -> Option<&str> {
        match self.terms.as_slice() {
            [(1, Term::Var(name))] => Some(name),
            _ => None,
        }
    }
}

fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == '+' || c == '-' || c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            if !c.is_whitespace() {
                out.push(&text[i..i + 1]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

impl Count {
    /// The value of the count.
    pub fn eval(&self, vars: &Vars) -> Result<u64, ExprError> {
        match self {
            Count::Number(n) => Ok(*n),
            Count::Expr(text) => {
                let value = Expr::parse(text)?.eval(vars)?;
                u64::try_from(value)
                    .map_err(|_| ExprError(format!("{text:?} is {value}, expected at least 0")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_sums_and_explains_errors() {
        let vars: Vars = [("snap".to_owned(), json!(4)), ("s".to_owned(), json!("x"))].into();
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("snap + 1", Ok(5)),
            ("snap-1+10", Ok(13)),
            ("7", Ok(7)),
            ("snap +", Err("incomplete")),
            ("+ snap", Err("unexpected \"+\"")),
            ("nope", Err("not set")),
            ("s", Err("not an integer")),
            ("a * 2", Err("unexpected \"*\"")),
        ];
        for (text, expected) in cases {
            let got = Expr::parse(text).and_then(|e| e.eval(&vars));
            match (got, expected) {
                (Ok(v), Ok(e)) => assert_eq!(v, *e, "{text}"),
                (Err(err), Err(needle)) => assert!(err.0.contains(needle), "{text}: {err}"),
                (got, _) => panic!("{text}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
