//! The one `ws://` URL parser: host (name, IPv4 or bracketed IPv6 literal), port (default 80),
//! path and query; `wss://` and other schemes are refused with a typed [`UrlError`].

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Why a string is not a `ws://` URL this crate can dial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A `wss://` URL: this crate speaks plain WebSocket only.
    #[error(
        "{url}: wss:// is not supported (rtbus-socket speaks plain ws:// only; terminate TLS in \
         front of the server and dial it with ws://)"
    )]
    Tls {
        /// The URL as given.
        url: String,
    },
    /// Another scheme than `ws://`, or none.
    #[error("{url}: expected a ws://host[:port]/path URL")]
    Scheme {
        /// The URL as given.
        url: String,
    },
    /// Nothing between `ws://` and the path.
    #[error("{url}: the URL names no host")]
    MissingHost {
        /// The URL as given.
        url: String,
    },
    /// A host that is not a name, an IPv4 address or a bracketed IPv6 literal.
    #[error("{url}: invalid host {host:?} ({reason})")]
    BadHost {
        /// The URL as given.
        url: String,
        /// The host part as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path or query that is not valid in an HTTP request target.
    #[error("{url}: invalid path {path:?} ({reason})")]
    BadPath {
        /// The URL as given.
        url: String,
        /// The path and query as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A port that is not a number from 1 to 65535.
    #[error("{url}: invalid port {port:?} (expected 1 to 65535)")]
    BadPort {
        /// The URL as given.
        url: String,
        /// The port part as written.
        port: String,
    },
    /// A `#fragment`, which WebSocket URLs must not carry (RFC 6455, section 3).
    #[error("{url}: a WebSocket URL has no #fragment")]
    Fragment {
        /// The URL as given.
        url: String,
    },
}

/// A parsed `ws://host[:port]/path?query` URL.
///
/// Parse once, then dial it (or a resolved [`SocketAddr`]) as often as needed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    /// The host, without brackets for an IPv6 literal.
    host: String,
    port: u16,
    /// The path and query, always starting with `/`.
    path: String,
}

/// The port of a `ws://` URL that names none.
pub const DEFAULT_PORT: u16 = 80;

impl Url {
    /// Parses `ws://host[:port][/path][?query]`.
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let url = || text.to_owned();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme { url: url() })?;
        if scheme.eq_ignore_ascii_case("wss") {
            return Err(UrlError::Tls { url: url() });
        }
        if !scheme.eq_ignore_ascii_case("ws") {
            return Err(UrlError::Scheme { url: url() });
        }
        if rest.contains('#') {
            return Err(UrlError::Fragment { url: url() });
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(UrlError::BadPath {
                url: url(),
                path,
                reason: "whitespace or control characters",
            });
        }
        let (host, port) = split_authority(text, authority)?;
        Ok(Url {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The host: a name, an IPv4 address, or an IPv6 address without its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path and query, e.g. `/api/realtime?x=1`; `/` when the URL has none.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host:port`, with an IPv6 literal in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server with another path (and query): `ws://h:1/a` with `/b?c` is
    /// `ws://h:1/b?c`. A path without a leading `/` gets one.
    pub fn with_path(&self, path: &str) -> Url {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Url {
            path,
            ..self.clone()
        }
    }

    /// The same path on another server address, e.g. after a restart moved the server.
    pub fn with_addr(&self, addr: SocketAddr) -> Url {
        Url {
            host: addr.ip().to_string(),
            port: addr.port(),
            path: self.path.clone(),
        }
    }

    /// Resolves the host to its first address. Dial many times with the answer to resolve once.
    pub async fn resolve(&self) -> Result<SocketAddr> {
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|source| Error::Resolve {
                host: self.authority(),
                source,
            })?;
        addrs.next().ok_or_else(|| Error::NoAddress {
            host: self.authority(),
        })
    }
}

fn split_authority<'a>(text: &str, authority: &'a str) -> Result<(&'a str, u16), UrlError> {
    let bad_host = |reason| UrlError::BadHost {
        url: text.to_owned(),
        host: authority.to_owned(),
        reason,
    };
    if authority.is_empty() {
        return Err(UrlError::MissingHost {
            url: text.to_owned(),
        });
    }
    if authority.contains('@') {
        return Err(bad_host(
            "credentials in a URL are not supported; use a bearer token",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad_host("an IPv6 literal lacks its closing ']'"))?;
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(bad_host("not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad_host("text after an IPv6 literal must be :port"))?,
            ),
        };
        (literal, port)
    } else {
        match authority.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return Err(bad_host("an IPv6 literal must be written in brackets"));
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost {
            url: text.to_owned(),
        });
    }
    if !authority.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(bad_host(
            "a host name holds only letters, digits, '-', '.' and '_'",
        ));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => Some(p)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::BadPort {
                url: text.to_owned(),
                port: p.to_owned(),
            })?,
    };
    Ok((host, port))
}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Url, UrlError> {
        Url::parse(s)
    }
}

impl fmt::Display for Url {
    /// `ws://host[:port]/path`, the port left out when it is 80.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == DEFAULT_PORT {
            write!(f, "ws://{host}{}", self.path)
        } else {
            write!(f, "ws://{host}:{}{}", self.port, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, host, port, path) for URLs that parse.
    const GOOD: &[(&str, &str, u16, &str)] = &[
        (
            "ws://127.0.0.1:4000/api/realtime",
            "127.0.0.1",
            4000,
            "/api/realtime",
        ),
        (
            "ws://localhost/api/realtime",
            "localhost",
            80,
            "/api/realtime",
        ),
        ("ws://example.com", "example.com", 80, "/"),
        ("ws://example.com:8080", "example.com", 8080, "/"),
        ("ws://h:1/a?b=c&d", "h", 1, "/a?b=c&d"),
        ("ws://h?x=1", "h", 80, "/?x=1"),
        (
            "WS://Host-1.example_x:65535/",
            "Host-1.example_x",
            65535,
            "/",
        ),
        ("ws://[::1]:9000/api/realtime", "::1", 9000, "/api/realtime"),
        ("ws://[::1]/x", "::1", 80, "/x"),
        ("ws://[2001:db8::7]", "2001:db8::7", 80, "/"),
    ];

    #[test]
    fn urls_parse_into_host_port_and_path() {
        for (text, host, port, path) in GOOD {
            let url = Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (url.host(), url.port(), url.path()),
                (*host, *port, *path),
                "{text}"
            );
            // Display round-trips.
            assert_eq!(Url::parse(&url.to_string()).as_ref(), Ok(&url), "{text}");
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        type Check = fn(&UrlError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("wss://h/x", |e| matches!(e, UrlError::Tls { .. })),
            ("WSS://h:443", |e| matches!(e, UrlError::Tls { .. })),
            ("http://h/x", |e| matches!(e, UrlError::Scheme { .. })),
            ("h:1/x", |e| matches!(e, UrlError::Scheme { .. })),
            ("ws:///x", |e| matches!(e, UrlError::MissingHost { .. })),
            ("ws://", |e| matches!(e, UrlError::MissingHost { .. })),
            ("ws://:80/x", |e| matches!(e, UrlError::MissingHost { .. })),
            (
                "ws://h:/x",
                |e| matches!(e, UrlError::BadPort { port, .. } if port.is_empty()),
            ),
            (
                "ws://h:0/x",
                |e| matches!(e, UrlError::BadPort { port, .. } if port == "0"),
            ),
            ("ws://h:65536", |e| matches!(e, UrlError::BadPort { .. })),
            ("ws://h:+80", |e| matches!(e, UrlError::BadPort { .. })),
            ("ws://h:http", |e| matches!(e, UrlError::BadPort { .. })),
            ("ws://[::1/x", |e| matches!(e, UrlError::BadHost { .. })),
            ("ws://[nope]:1", |e| matches!(e, UrlError::BadHost { .. })),
            ("ws://[::1]x", |e| matches!(e, UrlError::BadHost { .. })),
            ("ws://[::1]:x", |e| matches!(e, UrlError::BadPort { .. })),
            ("ws://::1:80/x", |e| matches!(e, UrlError::BadHost { .. })),
            ("ws://user:pw@h/x", |e| {
                matches!(e, UrlError::BadHost { .. })
            }),
            ("ws://h st/x", |e| matches!(e, UrlError::BadHost { .. })),
            ("ws://h/a b", |e| matches!(e, UrlError::BadPath { .. })),
            ("ws://h/x#top", |e| matches!(e, UrlError::Fragment { .. })),
        ];
        for (text, check) in cases {
            match Url::parse(text) {
                Ok(url) => panic!("{text}: parsed as {url:?}"),
                Err(e) => {
                    assert!(check(&e), "{text}: {e:?}");
                    assert!(e.to_string().starts_with(text), "{text}: {e}");
                }
            }
        }
        let tls = Url::parse("wss://h/x").unwrap_err().to_string();
        assert!(tls.contains("TLS") && tls.contains("ws://"), "{tls}");
    }

    #[test]
    fn paths_and_addresses_are_replaced() {
        let url = Url::parse("ws://h:1/api/realtime?a=1").unwrap();
        assert_eq!(url.with_path("/x").to_string(), "ws://h:1/x");
        assert_eq!(url.with_path("x?y").to_string(), "ws://h:1/x?y");
        assert_eq!(
            Url::parse("ws://h:1").unwrap().with_path("/x").to_string(),
            "ws://h:1/x"
        );
        let moved = url.with_addr("[::1]:7".parse().unwrap());
        assert_eq!(moved.to_string(), "ws://[::1]:7/api/realtime?a=1");
        assert_eq!(moved.authority(), "[::1]:7");
        assert_eq!(Url::parse("ws://h/x").unwrap().to_string(), "ws://h/x");
        assert_eq!(Url::parse("ws://h:80/x").unwrap().authority(), "h:80");
    }

    #[tokio::test]
    async fn loopback_resolves() {
        let url = Url::parse("ws://127.0.0.1:4000/x").unwrap();
        assert_eq!(
            url.resolve().await.unwrap(),
            "127.0.0.1:4000".parse().unwrap()
        );
    }
}
