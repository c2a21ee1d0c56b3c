//! Syscall policy: `--deny NAME[=ERRNO|kill]` and policy files.
//!
//! A denied call does not reach the kernel: it fails with the chosen errno
//! (EPERM by default), or the process is killed with SIGSYS, as a seccomp
//! filter would do. A policy file holds one rule a line:
//!
//! ```text
//! # no networking, and pretend /proc is not there
//! deny socket=EACCES
//! deny connect
//! deny ptrace=kill
//! allow getpid
//! ```
//!
//! Later rules override earlier ones for the same call.

use crate::{SYSCALLS, lookup};
use std::collections::HashMap;

/// What happens to a denied call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DenyAction {
    /// The call fails with this errno (positive, 1..=4095).
    Errno(i32),
    /// The process is killed by SIGSYS.
    Kill,
}

/// One rule of a policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PolicyRule {
    Deny { nr: u64, action: DenyAction },
    Allow { nr: u64 },
}

impl PolicyRule {
    /// The syscall the rule is about.
    pub fn nr(&self) -> u64 {
        match *self {
            PolicyRule::Deny { nr, .. } | PolicyRule::Allow { nr } => nr,
        }
    }
}

/// A syscall by name (`openat`) or number (`257`), which must be in the table.
pub fn syscall_by_name(name: &str) -> Result<u64, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("missing syscall name".to_string());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return match name.parse::<u64>() {
            Ok(nr) if lookup(nr).is_some() => Ok(nr),
            _ => Err(format!("unknown syscall number '{name}'")),
        };
    }
    SYSCALLS
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.nr as u64)
        .ok_or_else(|| format!("unknown syscall '{name}'"))
}

/// An errno by name (`EACCES`, case-insensitive) or number (`13`).
pub fn parse_errno(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("missing errno after '='".to_string());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i32>() {
            Ok(n) if (1..=crate::errno::MAX_ERRNO as i32).contains(&n) => Ok(n),
            _ => Err(format!("errno '{s}' out of range 1..4095")),
        };
    }
    crate::errno::by_name(&s.to_ascii_uppercase()).ok_or_else(|| format!("unknown errno '{s}'"))
}

/// Parse a `--deny` value: `NAME`, `NAME=ERRNO` (name or number) or
/// `NAME=kill`. The default action is `Errno(EPERM)`.
pub fn parse_deny(spec: &str) -> Result<(u64, DenyAction), String> {
    let (name, action) = match spec.split_once('=') {
        None => (spec, DenyAction::Errno(libc::EPERM)),
        Some((name, act)) if act.trim().eq_ignore_ascii_case("kill") => (name, DenyAction::Kill),
        Some((name, act)) => (name, DenyAction::Errno(parse_errno(act)?)),
    };
    Ok((syscall_by_name(name)?, action))
}

/// Parse a policy file: `deny NAME[=ERRNO|kill]` or `allow NAME` per line,
/// blank lines and `#` comments ignored. Errors name the line.
pub fn parse_policy(text: &str) -> Result<Vec<PolicyRule>, String> {
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let lineno = i + 1;
        let err = |e: String| format!("line {lineno}: {e}");
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let rule = match verb {
            "deny" => {
                let (nr, action) = parse_deny(rest).map_err(err)?;
                PolicyRule::Deny { nr, action }
            }
            "allow" => {
                if rest.contains('=') {
                    return Err(err(format!("'allow' takes no action: '{rest}'")));
                }
                PolicyRule::Allow {
                    nr: syscall_by_name(rest).map_err(err)?,
                }
            }
            _ => return Err(err(format!("expected 'deny' or 'allow', found '{verb}'"))),
        };
        rules.push(rule);
    }
    Ok(rules)
}

/// A set of rules ready to be consulted per call.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    denied: HashMap<u64, DenyAction>,
}

impl Policy {
    /// Apply `rules` in order (later ones win).
    pub fn new(rules: &[PolicyRule]) -> Self {
        let mut p = Policy::default();
        for r in rules {
            match *r {
                PolicyRule::Deny { nr, action } => {
                    p.denied.insert(nr, action);
                }
                PolicyRule::Allow { nr } => {
                    p.denied.remove(&nr);
                }
            }
        }
        p
    }

    /// What to do instead of syscall `nr`, if it is denied.
    pub fn action(&self, nr: u64) -> Option<DenyAction> {
        self.denied.get(&nr).copied()
    }

    /// Whether no call is denied.
    pub fn is_empty(&self) -> bool {
        self.denied.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_specs() {
        assert_eq!(
            parse_deny("openat"),
            Ok((257, DenyAction::Errno(libc::EPERM)))
        );
        assert_eq!(
            parse_deny("openat=EACCES"),
            Ok((257, DenyAction::Errno(libc::EACCES)))
        );
        assert_eq!(
            parse_deny("openat=eacces"),
            Ok((257, DenyAction::Errno(libc::EACCES)))
        );
        assert_eq!(parse_deny("socket=97"), Ok((41, DenyAction::Errno(97))));
        assert_eq!(
            parse_deny("socket=EWOULDBLOCK"),
            Ok((41, DenyAction::Errno(libc::EAGAIN)))
        );
        assert_eq!(parse_deny("ptrace=kill"), Ok((101, DenyAction::Kill)));
        assert_eq!(parse_deny("ptrace=KILL"), Ok((101, DenyAction::Kill)));
        assert_eq!(parse_deny("59"), Ok((59, DenyAction::Errno(libc::EPERM))));
        assert_eq!(
            parse_deny(" connect = ECONNREFUSED "),
            Ok((42, DenyAction::Errno(libc::ECONNREFUSED)))
        );
    }

    #[test]
    fn deny_errors_name_the_problem() {
        let e = parse_deny("opne").unwrap_err();
        assert!(e.contains("opne"), "{e}");
        let e = parse_deny("open=EFOO").unwrap_err();
        assert!(e.contains("EFOO"), "{e}");
        assert!(parse_deny("open=0").unwrap_err().contains('0'));
        assert!(parse_deny("open=4096").is_err());
        assert!(parse_deny("open=99999999999999").is_err());
        assert!(parse_deny("open=").is_err());
        assert!(parse_deny("").is_err());
        assert!(parse_deny("=EPERM").is_err());
        assert!(parse_deny("400").unwrap_err().contains("400"));
    }

    #[test]
    fn policy_files() {
        let text = "# sandbox\n\ndeny socket=EACCES\ndeny ptrace=kill  # never\n  allow socket\ndeny openat\n";
        let rules = parse_policy(text).unwrap();
        assert_eq!(
            rules,
            vec![
                PolicyRule::Deny {
                    nr: 41,
                    action: DenyAction::Errno(libc::EACCES)
                },
                PolicyRule::Deny {
                    nr: 101,
                    action: DenyAction::Kill
                },
                PolicyRule::Allow { nr: 41 },
                PolicyRule::Deny {
                    nr: 257,
                    action: DenyAction::Errno(libc::EPERM)
                },
            ]
        );
        let p = Policy::new(&rules);
        assert_eq!(p.action(41), None);
        assert_eq!(p.action(101), Some(DenyAction::Kill));
        assert_eq!(p.action(257), Some(DenyAction::Errno(libc::EPERM)));
        assert_eq!(p.action(0), None);
        assert_eq!(rules[2].nr(), 41);

        let e = parse_policy("deny open\nblock read\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("block"), "{e}");
        let e = parse_policy("\n\n# c\ndeny nosuch=EPERM\n").unwrap_err();
        assert!(e.starts_with("line 4:") && e.contains("nosuch"), "{e}");
        let e = parse_policy("allow read=EPERM").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
        assert!(parse_policy("deny").unwrap_err().starts_with("line 1:"));
        assert_eq!(parse_policy("").unwrap(), vec![]);
    }
}
