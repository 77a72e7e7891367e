//! Tokens, principals and topic patterns: who may read and publish where.

use std::collections::HashMap;
use std::sync::Arc;

use rtbus_protocol::{Topic, TopicError};

use crate::config::Config;
use crate::error::Error;

/// The role that allows publishing.
pub const PUBLISHER_ROLE: &str = "publisher";
/// The role that allows reading the stats endpoint.
pub const ADMIN_ROLE: &str = "admin";

/// A topic pattern: an exact topic, or a prefix followed by `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    prefix: String,
    glob: bool,
}

/// Why a topic pattern of the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    /// `{principal}` in a pattern that belongs to no principal (a public topic).
    #[error("pattern {pattern:?} uses {{principal}} where there is no principal")]
    NoPrincipal { pattern: String },
    /// A `*` anywhere but at the end.
    #[error("pattern {pattern:?} has '*' before its end (only a trailing '*' is supported)")]
    InnerWildcard { pattern: String },
    /// A pattern without `*` that is not a valid topic.
    #[error("pattern {pattern:?}: {error}")]
    Topic {
        pattern: String,
        #[source]
        error: TopicError,
    },
}

impl Pattern {
    /// Parses `text`, replacing `{principal}` by `principal` when there is one.
    fn parse(text: &str, principal: Option<&str>) -> Result<Pattern, PatternError> {
        let text = match principal {
            Some(name) => text.replace("{principal}", name),
            None if text.contains("{principal}") => {
                return Err(PatternError::NoPrincipal {
                    pattern: text.to_owned(),
                });
            }
            None => text.to_owned(),
        };
        let (prefix, glob) = match text.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (text.as_str(), false),
        };
        if prefix.contains('*') {
            return Err(PatternError::InnerWildcard { pattern: text });
        }
        if !glob {
            if let Err(error) = Topic::validate(prefix) {
                return Err(PatternError::Topic {
                    pattern: text,
                    error,
                });
            }
        }
        Ok(Pattern {
            prefix: prefix.to_owned(),
            glob,
        })
    }

    fn matches(&self, topic: &str) -> bool {
        if self.glob {
            topic.starts_with(&self.prefix)
        } else {
            topic == self.prefix
        }
    }
}

/// An authenticated identity.
#[derive(Debug)]
pub(crate) struct Principal {
    pub name: String,
    pub roles: Vec<String>,
    read: Vec<Pattern>,
    publish: Vec<Pattern>,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The token table and the public topics, compiled from the configuration.
#[derive(Debug)]
pub(crate) struct Authority {
    tokens: HashMap<String, Arc<Principal>>,
    public: Vec<Pattern>,
}

/// Whether a connection may do something on a topic, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed,
    /// No principal: the answer is `unauthorized`.
    NeedsAuth,
    /// A principal without permission: the answer is `forbidden`.
    Denied,
}

impl Authority {
    pub fn new(config: &Config) -> Result<Authority, Error> {
        let bad = |message: String| Error::Config(message);
        let public = config
            .public_topics
            .iter()
            .map(|p| Pattern::parse(p, None).map_err(|e| bad(format!("public_topics: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tokens = HashMap::new();
        for (index, token) in config.tokens.iter().enumerate() {
            let at = |field: &str, e: &dyn std::fmt::Display| {
                bad(format!("tokens[{index}].{field}: {e}"))
            };
            if token.token.is_empty() {
                return Err(at("token", &"is empty"));
            }
            if token.principal.is_empty() {
                return Err(at("principal", &"is empty"));
            }
            let compile = |field: &str, list: &[String]| {
                list.iter()
                    .map(|p| Pattern::parse(p, Some(&token.principal)).map_err(|e| at(field, &e)))
                    .collect::<Result<Vec<_>, _>>()
            };
            let principal = Principal {
                name: token.principal.clone(),
                roles: token.roles.clone(),
                read: compile("read", &token.read)?,
                publish: compile("publish", &token.publish)?,
            };
            if tokens
                .insert(token.token.clone(), Arc::new(principal))
                .is_some()
            {
                return Err(at("token", &"is the same as an earlier token"));
            }
        }
        Ok(Authority { tokens, public })
    }

    /// The principal a token authenticates, if the token is known.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Principal>> {
        self.tokens.get(token).cloned()
    }

    pub fn can_read(&self, principal: Option<&Principal>, topic: &Topic) -> Decision {
        let name = topic.as_str();
        if self.public.iter().any(|p| p.matches(name)) {
            return Decision::Allowed;
        }
        match principal {
            None => Decision::NeedsAuth,
            Some(p) if p.read.iter().any(|pat| pat.matches(name)) => Decision::Allowed,
            Some(_) => Decision::Denied,
        }
    }

    pub fn can_publish(&self, principal: Option<&Principal>, topic: &Topic) -> Decision {
        match principal {
            None => Decision::NeedsAuth,
            Some(p)
                if p.has_role(PUBLISHER_ROLE)
                    && p.publish.iter().any(|pat| pat.matches(topic.as_str())) =>
            {
                Decision::Allowed
            }
            Some(_) => Decision::Denied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    fn authority() -> Authority {
        let mut alice = TokenConfig::new("ta", "alice");
        alice.read = vec!["sessions.activity:{principal}-*".into(), "custom.x".into()];
        alice.publish = vec!["custom.*".into()];
        alice.roles = vec![PUBLISHER_ROLE.into()];
        let mut bob = TokenConfig::new("tb", "bob");
        bob.publish = vec!["*".into()];
        let config = Config {
            tokens: vec![alice, bob],
            public_topics: vec!["drives.pressure".into()],
            ..Config::default()
        };
        Authority::new(&config).unwrap()
    }

    #[test]
    fn decisions_follow_patterns_roles_and_principals() {
        let auth = authority();
        let alice = auth.authenticate("ta").unwrap();
        let bob = auth.authenticate("tb").unwrap();
        let t = |s: &str| Topic::new(s).unwrap();
        use Decision::*;
        let cases = [
            ("drives.pressure", None, Allowed, NeedsAuth),
            ("drives.pressure", Some(&bob), Allowed, Denied),
            ("sessions.activity:alice-1", Some(&alice), Allowed, Denied),
            ("sessions.activity:bob-1", Some(&alice), Denied, Denied),
            ("sessions.activity:alice-1", Some(&bob), Denied, Denied),
            ("sessions.activity:alice-1", None, NeedsAuth, NeedsAuth),
            ("custom.x", Some(&alice), Allowed, Allowed),
            ("custom.y", Some(&alice), Denied, Allowed),
        ];
        for (topic, who, read, publish) in cases {
            let who = who.map(|p: &Arc<Principal>| p.as_ref());
            assert_eq!(auth.can_read(who, &t(topic)), read, "read {topic}");
            assert_eq!(auth.can_publish(who, &t(topic)), publish, "publish {topic}");
        }
        assert!(auth.authenticate("nope").is_none());
    }

    #[test]
    fn bad_patterns_are_reported_with_their_place() {
        let config = Config {
            public_topics: vec!["sessions.{principal}".into()],
            ..Config::default()
        };
        let err = Authority::new(&config).unwrap_err().to_string();
        assert!(err.contains("public_topics"), "{err}");
        let mut token = TokenConfig::new("t", "p");
        token.read = vec!["a*b".into()];
        let config = Config {
            tokens: vec![token],
            ..Config::default()
        };
        let err = Authority::new(&config).unwrap_err().to_string();
        assert!(err.contains("tokens[0].read"), "{err}");
    }

    #[test]
    fn each_bad_pattern_has_its_reason() {
        let cases = [
            (
                "sessions.{principal}",
                None,
                "pattern \"sessions.{principal}\" uses {principal} where there is no principal",
            ),
            (
                "a*b*",
                Some("p"),
                "pattern \"a*b*\" has '*' before its end (only a trailing '*' is supported)",
            ),
        ];
        for (text, principal, message) in cases {
            assert_eq!(
                Pattern::parse(text, principal).unwrap_err().to_string(),
                message
            );
        }
        let err = Pattern::parse("bad..topic", None).unwrap_err();
        let PatternError::Topic { pattern, error } = &err else {
            panic!("expected a topic error, got {err:?}");
        };
        assert_eq!(pattern, "bad..topic");
        assert_eq!(err.to_string(), format!("pattern \"bad..topic\": {error}"));
        assert_eq!(
            Pattern::parse("sessions.activity:{principal}-*", Some("ann")),
            Ok(Pattern {
                prefix: "sessions.activity:ann-".into(),
                glob: true
            })
        );
    }
}
