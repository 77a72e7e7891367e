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

use crate::error::ExpectedToken;
pub use crate::error::ExprError;

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
                        Term::Literal(t.parse().map_err(|_| ExprError::TooLarge {
                            number: t.to_owned(),
                            expr: text.to_owned(),
                        })?)
                    } else if t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                        && t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    {
                        Term::Var(t.to_owned())
                    } else {
                        return Err(ExprError::Unexpected {
                            token: t.to_owned(),
                            expr: text.to_owned(),
                            expected: ExpectedToken::Term,
                        });
                    };
                    terms.push((sign, term));
                    expect_term = false;
                }
                (t, _) => {
                    return Err(ExprError::Unexpected {
                        token: t.to_owned(),
                        expr: text.to_owned(),
                        expected: if expect_term {
                            ExpectedToken::Term
                        } else {
                            ExpectedToken::Operator
                        },
                    });
                }
            }
        }
        if expect_term {
            return Err(ExprError::Incomplete {
                expr: text.to_owned(),
            });
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
                    Some(v) => v.as_i64().ok_or_else(|| ExprError::NotAnInteger {
                        name: name.clone(),
                        value: v.clone(),
                    })?,
                    None => return Err(ExprError::Unset { name: name.clone() }),
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
                u64::try_from(value).map_err(|_| ExprError::Negative {
                    expr: text.clone(),
                    value,
                })
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
        let unexpected = |token: &str, expr: &str, expected| ExprError::Unexpected {
            token: token.into(),
            expr: expr.into(),
            expected,
        };
        let cases: Vec<(&str, Result<i64, ExprError>)> = vec![
            ("snap + 1", Ok(5)),
            ("snap-1+10", Ok(13)),
            ("7", Ok(7)),
            (
                "snap +",
                Err(ExprError::Incomplete {
                    expr: "snap +".into(),
                }),
            ),
            (
                "+ snap",
                Err(unexpected("+", "+ snap", ExpectedToken::Term)),
            ),
            (
                "nope",
                Err(ExprError::Unset {
                    name: "nope".into(),
                }),
            ),
            (
                "s",
                Err(ExprError::NotAnInteger {
                    name: "s".into(),
                    value: json!("x"),
                }),
            ),
            (
                "a * 2",
                Err(unexpected("*", "a * 2", ExpectedToken::Operator)),
            ),
            (
                "99999999999999999999",
                Err(ExprError::TooLarge {
                    number: "99999999999999999999".into(),
                    expr: "99999999999999999999".into(),
                }),
            ),
        ];
        for (text, expected) in cases {
            let got = Expr::parse(text).and_then(|e| e.eval(&vars));
            assert_eq!(got, expected, "{text}");
        }
        assert_eq!(
            Count::Expr("snap - 5".into()).eval(&vars),
            Err(ExprError::Negative {
                expr: "snap - 5".into(),
                value: -1
            })
        );
        // What users read.
        let e = Expr::parse("snap +").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expression \"snap +\" is incomplete; expected a number or a variable name"
        );
    }
}
