//! Redis commands per publish: `INFO commandstats` read before and after a run's publishing,
//! parsed and subtracted, so a scale-out run shows what each publish cost Redis.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The command every publish of the Redis engine runs (its compare-and-set script).
pub const PUBLISH_COMMAND: &str = "evalsha";

/// The command the probe itself sends, left out of the totals.
const PROBE_COMMAND: &str = "info";

/// Calls per command, from one `INFO commandstats` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandStats {
    /// Command name (as Redis names it, e.g. `evalsha`, `client|setinfo`) → calls.
    pub calls: BTreeMap<String, u64>,
}

/// Parses the text of `INFO commandstats`: a `# Commandstats` header, then one
/// `cmdstat_<name>:calls=<n>,usec=…` line per command that was called (`\r\n` or `\n` line
/// ends). Anything else is refused with the line that did not fit.
pub fn parse(info: &str) -> Result<CommandStats, String> {
    let lines = info.lines().map(|l| l.trim_end_matches('\r'));
    let mut header = false;
    let mut calls = BTreeMap::new();
    for (index, line) in lines.enumerate() {
        let number = index + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('#') {
            if section.trim() != "Commandstats" {
                return Err(format!(
                    "line {number}: section {line:?}, expected only `# Commandstats`"
                ));
            }
            header = true;
            continue;
        }
        let Some(stat) = line.strip_prefix("cmdstat_") else {
            return Err(format!(
                "line {number}: {line:?} is neither `# Commandstats` nor `cmdstat_<name>:calls=…`"
            ));
        };
        let Some((name, fields)) = stat.split_once(':') else {
            return Err(format!(
                "line {number}: {line:?} has no `:` after the command name"
            ));
        };
        if name.is_empty() {
            return Err(format!("line {number}: {line:?} names no command"));
        }
        let value = fields
            .split(',')
            .find_map(|field| field.strip_prefix("calls="))
            .ok_or_else(|| format!("line {number}: {line:?} has no `calls=` field"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("line {number}: calls={value:?} is not a count"))?;
        if calls.insert(name.to_owned(), value).is_some() {
            return Err(format!("line {number}: command {name:?} appears twice"));
        }
    }
    if !header {
        return Err("no `# Commandstats` header: not the reply of `INFO commandstats`".to_owned());
    }
    Ok(CommandStats { calls })
}

impl CommandStats {
    /// The calls made between `self` (before) and `after`, per command. Refused when a count went
    /// down: the statistics were reset (`CONFIG RESETSTAT`, a restart) in between.
    pub fn until(&self, after: &CommandStats) -> Result<CommandStats, String> {
        if let Some((name, before)) = self
            .calls
            .iter()
            .find(|(name, before)| after.calls.get(*name).is_none_or(|a| a < before))
        {
            let now = after.calls.get(name).copied().unwrap_or(0);
            return Err(format!(
                "Redis's count of {name} went from {before} down to {now}: its statistics were \
                 reset during the run"
            ));
        }
        let calls = after
            .calls
            .iter()
            .map(|(name, a)| {
                let before = self.calls.get(name).copied().unwrap_or(0);
                (name.clone(), a - before)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(CommandStats { calls })
    }

    /// Calls of every command but the probe's own `INFO`.
    pub fn total(&self) -> u64 {
        self.calls
            .iter()
            .filter(|(name, _)| *name != PROBE_COMMAND)
            .map(|(_, n)| n)
            .sum()
    }
}

/// What Redis did for a run's publishes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisCommands {
    /// Publishes acknowledged between the two readings.
    pub published: u64,
    /// `EVALSHA` calls (the publish script) between the two readings.
    pub evalsha: u64,
    /// Every command between the two readings except the probe's `INFO`: the nodes' health
    /// checks (a ping and a check of the generation key, each node every second) included.
    pub total: u64,
    /// `evalsha / published`.
    pub evalsha_per_publish: f64,
    /// `total / published`.
    pub total_per_publish: f64,
    /// Seconds between the two readings (the health checks grow with it, not with publishes).
    pub seconds: f64,
    /// Calls per command between the two readings.
    pub by_command: BTreeMap<String, u64>,
}

impl RedisCommands {
    /// The commands of `delta` (the calls between two readings `seconds` apart) per publish of
    /// `published`.
    pub fn of(delta: &CommandStats, published: u64, seconds: f64) -> RedisCommands {
        let evalsha = delta.calls.get(PUBLISH_COMMAND).copied().unwrap_or(0);
        let total = delta.total();
        let per = |n: u64| {
            if published == 0 {
                0.0
            } else {
                n as f64 / published as f64
            }
        };
        RedisCommands {
            published,
            evalsha,
            total,
            evalsha_per_publish: per(evalsha),
            total_per_publish: per(total),
            seconds,
            by_command: delta
                .calls
                .iter()
                .filter(|(name, _)| *name != PROBE_COMMAND)
                .map(|(name, n)| (name.clone(), *n))
                .collect(),
        }
    }
}

/// The commands of several runs together (sums; per publish over every run's publishes), or
/// `None` for no run.
pub fn combined<'a>(runs: impl IntoIterator<Item = &'a RedisCommands>) -> Option<RedisCommands> {
    let mut runs = runs.into_iter().peekable();
    runs.peek()?;
    let mut calls = BTreeMap::new();
    let (mut published, mut seconds) = (0, 0.0);
    for run in runs {
        published += run.published;
        seconds += run.seconds;
        for (name, n) in &run.by_command {
            *calls.entry(name.clone()).or_insert(0) += n;
        }
    }
    Some(RedisCommands::of(
        &CommandStats { calls },
        published,
        seconds,
    ))
}

/// A connection to the Redis whose commands are counted.
pub struct Probe {
    url: String,
    conn: redis::aio::MultiplexedConnection,
}

impl Probe {
    /// Connects to `url` (`redis://HOST:PORT`).
    pub async fn connect(url: &str) -> anyhow::Result<Probe> {
        let client =
            redis::Client::open(url).with_context(|| format!("--redis-stats {url}: bad URL"))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("--redis-stats {url}: connecting"))?;
        Ok(Probe {
            url: url.to_owned(),
            conn,
        })
    }

    /// Reads and parses `INFO commandstats`.
    pub async fn read(&mut self) -> anyhow::Result<CommandStats> {
        let text: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.conn)
            .await
            .with_context(|| format!("--redis-stats {}: INFO commandstats", self.url))?;
        parse(&text).map_err(|e| anyhow::anyhow!("--redis-stats {}: {e}", self.url))
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("url", &self.url).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Redis 7's reply (subcommands named `parent|sub`, `\r\n` line ends).
    const BEFORE: &str = "# Commandstats\r\n\
        cmdstat_evalsha:calls=10,usec=500,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setinfo:calls=4,usec=8,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=1,usec=30,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n";

    const AFTER: &str = "# Commandstats\r\n\
        cmdstat_evalsha:calls=110,usec=5500,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setinfo:calls=4,usec=8,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_ping:calls=6,usec=6,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=2,usec=60,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn a_reply_gives_calls_per_command() {
        let stats = parse(BEFORE).expect("valid reply");
        let calls: Vec<_> = stats
            .calls
            .iter()
            .map(|(name, n)| (name.as_str(), *n))
            .collect();
        assert_eq!(calls, [("client|setinfo", 4), ("evalsha", 10), ("info", 1)]);
        // No command called yet: only the header.
        assert_eq!(parse("# Commandstats\r\n"), Ok(CommandStats::default()));
        // Plain `\n` line ends and a field order other than Redis's own.
        let stats = parse("# Commandstats\ncmdstat_get:usec=3,calls=7\n").expect("valid");
        assert_eq!(stats.calls.get("get"), Some(&7));
    }

    #[test]
    fn a_reply_that_is_not_commandstats_is_refused_with_the_line() {
        let refused = |text: &str| parse(text).expect_err(text);
        assert!(refused("").contains("no `# Commandstats` header"));
        assert!(refused("# Server\r\nredis_version:7.0.15\r\n").contains("line 1: section"));
        assert!(refused("# Commandstats\r\nredis_version:7.0.15\r\n").contains("line 2"));
        assert!(refused("# Commandstats\r\ncmdstat_get\r\n").contains("no `:`"));
        assert!(refused("# Commandstats\r\ncmdstat_:calls=1\r\n").contains("names no command"));
        assert!(refused("# Commandstats\r\ncmdstat_get:usec=3\r\n").contains("no `calls=`"));
        assert!(refused("# Commandstats\r\ncmdstat_get:calls=-1\r\n").contains("not a count"));
        assert!(
            refused("# Commandstats\r\ncmdstat_get:calls=1\r\ncmdstat_get:calls=2\r\n")
                .contains("appears twice")
        );
    }

    #[test]
    fn commands_per_publish_leave_out_the_probe_and_count_everything_else() {
        let before = parse(BEFORE).expect("valid");
        let after = parse(AFTER).expect("valid");
        let delta = before.until(&after).expect("counts only grew");
        let calls: Vec<_> = delta
            .calls
            .iter()
            .map(|(name, n)| (name.as_str(), *n))
            .collect();
        // client|setinfo did not move and is dropped; info is there but not in the total.
        assert_eq!(calls, [("evalsha", 100), ("info", 1), ("ping", 6)]);
        assert_eq!(delta.total(), 106);
        let per = RedisCommands::of(&delta, 100, 3.0);
        assert_eq!((per.evalsha, per.total), (100, 106));
        assert_eq!(per.evalsha_per_publish, 1.0);
        assert_eq!(per.total_per_publish, 1.06);
        assert!(!per.by_command.contains_key("info"));
        // No publish: nothing to divide by, and no NaN in the report.
        assert_eq!(RedisCommands::of(&delta, 0, 3.0).total_per_publish, 0.0);
    }

    #[test]
    fn runs_combine_into_sums_and_one_rate_per_publish() {
        let delta = |evalsha, ping| CommandStats {
            calls: [("evalsha".to_owned(), evalsha), ("ping".to_owned(), ping)].into(),
        };
        let a = RedisCommands::of(&delta(100, 4), 100, 2.0);
        let b = RedisCommands::of(&delta(300, 8), 300, 4.0);
        let both = combined([&a, &b]).expect("two runs");
        assert_eq!((both.published, both.evalsha, both.total), (400, 400, 412));
        assert_eq!(both.seconds, 6.0);
        assert_eq!(both.total_per_publish, 1.03);
        assert_eq!(both.by_command.get("ping"), Some(&12));
        assert_eq!(combined([]), None);
    }

    #[test]
    fn counts_that_went_down_mean_the_statistics_were_reset() {
        let before = parse(AFTER).expect("valid");
        let after = parse(BEFORE).expect("valid");
        let err = before.until(&after).expect_err("evalsha went down");
        assert!(err.contains("evalsha went from 110 down to 10"), "{err}");
        // A command that vanished from the reply went down to zero.
        let after = parse("# Commandstats\r\n").expect("valid");
        assert!(before.until(&after).is_err());
    }
}
