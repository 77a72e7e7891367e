//! The testee contract: what a server under test must provide (families, credentials and their
//! permissions, public topics, configured limits), and the values cases read from it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::error::ContractError;
use crate::expr::Vars;
use crate::template::TOKEN_PREFIX;
use crate::transcript::Capability;

/// What the harness assumes about a server under test. The defaults are what the embedded
/// reference server is configured with; a server under test is configured the same way, or
/// describes its own values in a TOML file passed with `--contract`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Contract {
    /// Bearer tokens by role in the suite. Cases use `publisher`, `reader` and `narrow`; see
    /// [`Contract::default`] for what each must be allowed.
    pub credentials: BTreeMap<String, Credential>,
    /// The limits the server is configured with.
    pub limits: ContractLimits,
    /// Capabilities the server does not have; cases that need one are `unsupported`.
    pub absent: Vec<Capability>,
    /// With `--url`: a shell command (run with `sh -c`) that stops the server under test, if it
    /// runs, and starts it again with its state lost, returning once the old process no longer
    /// accepts connections. The harness then waits until the URL accepts TCP. Without it, the
    /// `restart` capability is absent.
    #[serde(
        rename = "restartCommand",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_command: Option<String>,
    /// With `--url`: a shell command that shuts the server under test down gracefully, so it
    /// closes its connections with 1001 (e.g. sends it SIGTERM). Without it, the `shutdown`
    /// capability is absent. After a case that shut the server down, the restart command (if
    /// any) brings it back for the cases that follow.
    #[serde(
        rename = "shutdownCommand",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shutdown_command: Option<String>,
    /// How long a restart or shutdown command may run, and how long the harness then waits for
    /// the URL to accept TCP, in milliseconds each.
    #[serde(rename = "commandTimeoutMs")]
    pub command_timeout_ms: u64,
}

/// How long a restart or shutdown command may take by default.
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 30_000;

/// One credential of the contract.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The bearer token.
    pub token: String,
    /// The principal name the server reports for it in `authenticated`.
    pub principal: String,
    /// The roles the server reports for it.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token", &"<redacted>")
            .field("principal", &self.principal)
            .field("roles", &self.roles)
            .finish()
    }
}

/// The configured limits a server under test declares. Small values keep the suite fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ContractLimits {
    /// Largest client message in bytes (bigger: close 1009).
    pub max_message_bytes: u64,
    /// Most topics one connection may hold (more: `limit_exceeded`).
    pub max_topics_per_connection: u64,
    /// Most bytes queued for one connection (more: close 4009).
    pub max_pending_bytes: u64,
    /// Events each topic keeps for resume.
    pub history_per_topic: u64,
    /// Milliseconds before an idle unauthenticated connection is closed with 4001.
    pub auth_deadline_ms: u64,
    /// Milliseconds between the server's WebSocket pings.
    pub heartbeat_interval_ms: u64,
    /// Milliseconds a ping may go unanswered before close 4008.
    pub heartbeat_timeout_ms: u64,
    /// The most bytes the sockets between the server and a client that stopped reading can
    /// hold (the server's send buffer, the client's receive buffer, anything in between): the
    /// slow-consumer case publishes until `maxPendingBytes` plus this much must have
    /// overflowed the server's queue. Not a server setting, a bound. Default 64 MiB, more than
    /// Linux gives a socket unless told otherwise (`SO_SNDBUF` up to 2 × `net.core.wmem_max`,
    /// autotuning up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB by default).
    pub socket_buffer_bytes: u64,
}

impl Default for ContractLimits {
    fn default() -> Self {
        ContractLimits {
            max_message_bytes: 16 * 1024,
            max_topics_per_connection: 8,
            max_pending_bytes: 64 * 1024,
            history_per_topic: 8,
            auth_deadline_ms: 1000,
            heartbeat_interval_ms: 200,
            heartbeat_timeout_ms: 800,
            socket_buffer_bytes: 64 << 20,
        }
    }
}

/// The topic patterns readable without authentication (`custom.public.*`).
pub const PUBLIC_TOPICS: &[&str] = &["custom.public.*"];

/// What each credential of the suite may read and publish, as (read, publish) topic patterns:
/// exact topics or prefixes ending in `*`; `{principal}` stands for the principal's name.
pub fn permissions(credential: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match credential {
        "publisher" => (&["*"], &["*"]),
        "reader" => (
            &[
                "sessions.state",
                "terminals.state",
                "drives.pressure",
                "custom.*",
                "sessions.activity:{principal}-*",
            ],
            &[],
        ),
        "narrow" => (&["custom.*"], &["custom.narrow.*"]),
        _ => (&[], &[]),
    }
}

fn credential(token: &str, principal: &str, roles: &[&str]) -> Credential {
    Credential {
        token: token.to_owned(),
        principal: principal.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

impl Default for Contract {
    /// The suite's credentials:
    ///
    /// - `publisher`: role `publisher`; may read and publish every topic.
    /// - `reader`: no role; may read `sessions.state`, `terminals.state`, `drives.pressure`,
    ///   `custom.*` and `sessions.activity:<its principal>-*`; may publish nothing.
    /// - `narrow`: role `publisher`; may read `custom.*`, publish only on `custom.narrow.*`.
    ///
    /// Anyone may read `custom.public.*` without authenticating.
    fn default() -> Self {
        Contract {
            credentials: [
                (
                    "publisher".to_owned(),
                    credential("conformance-publisher-token", "publisher", &["publisher"]),
                ),
                (
                    "reader".to_owned(),
                    credential("conformance-reader-token", "reader", &[]),
                ),
                (
                    "narrow".to_owned(),
                    credential("conformance-narrow-token", "narrow", &["publisher"]),
                ),
            ]
            .into(),
            limits: ContractLimits::default(),
            absent: Vec::new(),
            restart_command: None,
            shutdown_command: None,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
        }
    }
}

impl Contract {
    /// Reads a contract from a TOML file; fields left out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Contract, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ContractError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Applies `NAME=TOKEN` overrides (from `--token`).
    pub fn set_token(&mut self, assignment: &str) -> Result<(), ContractError> {
        let (name, token) = assignment
            .split_once('=')
            .filter(|(n, t)| !n.is_empty() && !t.is_empty())
            .ok_or_else(|| ContractError::BadToken(assignment.to_owned()))?;
        let entry = self
            .credentials
            .entry(name.to_owned())
            .or_insert_with(|| credential("", name, &[]));
        entry.token = token.to_owned();
        Ok(())
    }

    /// Applies `RTBUS_CONFORMANCE_TOKEN_<NAME>` environment variables.
    pub fn apply_env(&mut self) {
        let names: Vec<String> = self.credentials.keys().cloned().collect();
        for name in names {
            let var = format!("RTBUS_CONFORMANCE_TOKEN_{}", name.to_uppercase());
            if let Ok(token) = std::env::var(&var) {
                if let Some(c) = self.credentials.get_mut(&name) {
                    c.token = token;
                }
            }
        }
    }

    /// An `rtbus-server` TOML configuration that fulfils this contract, e.g. to run the suite
    /// with `--url` against a separately started reference server.
    pub fn server_toml(&self, listen: &str) -> String {
        let list = |items: &[&str]| {
            let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = String::from(
            "# rtbus-server configuration that fulfils the conformance testee contract\n\
             # (printed by `rtbus-conformance contract --server-toml`). The tokens are test\n\
             # credentials: never use them in production.\n",
        );
        out.push_str(&format!(
            "listen = {listen:?}\npublic_topics = {}\n",
            list(PUBLIC_TOPICS)
        ));
        for (name, c) in &self.credentials {
            let (read, publish) = permissions(name);
            let roles: Vec<&str> = c.roles.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "\n[[tokens]]\ntoken = {:?}\nprincipal = {:?}\nroles = {}\nread = {}\npublish = {}\n",
                c.token,
                c.principal,
                list(&roles),
                list(read),
                list(publish)
            ));
        }
        let l = &self.limits;
        out.push_str(&format!(
            "\n[limits]\nmax_message_bytes = {}\nmax_topics_per_connection = {}\n\
             max_pending_bytes = {}\nhistory_per_topic = {}\nauth_deadline = {}\n\
             heartbeat_interval = {}\nheartbeat_timeout = {}\nsocket_send_buffer_bytes = 16384\n",
            l.max_message_bytes,
            l.max_topics_per_connection,
            l.max_pending_bytes,
            l.history_per_topic,
            l.auth_deadline_ms,
            l.heartbeat_interval_ms,
            l.heartbeat_timeout_ms
        ));
        out
    }

    /// The contract as TOML, for `--contract` files.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# The conformance testee contract (printed by `rtbus-conformance contract`).\n\
             # Edit it to describe your server and pass it with `--contract FILE`.\n\
             # Fixed by the protocol for every server, not configurable here: frames nest at most\n\
             # {} levels (MAX_NESTING_DEPTH); free-form numbers lie within +-(2^53 - 1); close\n\
             # codes are those of CloseCode.\n",
            rtbus_protocol::MAX_NESTING_DEPTH
        );
        if self.restart_command.is_none() && self.shutdown_command.is_none() {
            out.push_str(
                "# With --url, name commands the harness runs (sh -c) to restart and to shut down\n\
                 # your server, so the restart and shutdown cases can run (conformance/README.md):\n\
                 # restartCommand = \"systemctl restart my-server\"\n\
                 # shutdownCommand = \"systemctl stop my-server\"\n",
            );
        }
        out.push_str(&toml::to_string(self).unwrap_or_default());
        out
    }

    /// The values cases may read: limits (`maxMessageBytes`, ...), principals
    /// (`principal.reader`) and tokens (`{{token:reader}}`).
    pub fn vars(&self) -> Vars {
        let mut vars = Vars::new();
        let limits = serde_json::to_value(&self.limits).unwrap_or(Value::Null);
        if let Value::Object(map) = limits {
            vars.extend(map);
        }
        for (name, c) in &self.credentials {
            vars.insert(
                format!("principal.{name}"),
                Value::from(c.principal.clone()),
            );
            vars.insert(
                format!("{TOKEN_PREFIX}{name}"),
                Value::from(c.token.clone()),
            );
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_overrides_and_exposes_vars() {
        let mut c: Contract = toml::from_str(
            "absent = [\"resume\"]\n[limits]\nmaxTopicsPerConnection = 3\n[credentials.reader]\ntoken = \"r\"\nprincipal = \"ann\"\n",
        )
        .unwrap();
        assert_eq!(c.absent, vec![Capability::Resume]);
        c.set_token("reader=zz").unwrap();
        let vars = c.vars();
        assert_eq!(vars["maxTopicsPerConnection"], 3);
        assert_eq!(vars["principal.reader"], "ann");
        assert_eq!(vars["token:reader"], "zz");
        assert!(matches!(c.set_token("nope"), Err(ContractError::BadToken(t)) if t == "nope"));
        let err = toml::from_str::<Contract>("[limits]\nmaxTopics = 1").unwrap_err();
        assert!(err.to_string().contains("maxTopics"), "{err}");
        assert!(!format!("{:?}", c).contains("zz"));
    }

    #[test]
    fn names_restart_and_shutdown_commands_and_prints_them_back() {
        let c: Contract = toml::from_str(
            "restartCommand = \"./restart.sh\"\nshutdownCommand = \"kill $(cat pid)\"\ncommandTimeoutMs = 500\n",
        )
        .unwrap();
        assert_eq!(c.restart_command.as_deref(), Some("./restart.sh"));
        assert_eq!(c.shutdown_command.as_deref(), Some("kill $(cat pid)"));
        assert_eq!(c.command_timeout_ms, 500);
        let back: Contract = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        let printed = Contract::default().to_toml();
        assert!(printed.contains("# restartCommand = "), "{printed}");
        assert_eq!(
            toml::from_str::<Contract>(&printed).unwrap(),
            Contract::default()
        );
    }
}
