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
//!
//! A name selects the call of that name in each ABI's table, as strace's
//! `-e trace=NAME` and `-e inject=NAME` do in each personality: `deny open`
//! denies the x86-64 `open` (2) and the i386 `open` (5, made with
//! `int $0x80`); a name only one table has (`socketcall`, `mmap2`) selects
//! that call alone. A number, as in strace, is the call of that number in
//! each table that has one (`deny 5`: x86-64 `fstat` and i386 `open`).

use crate::Abi;
use std::collections::HashMap;

/// What happens to a denied call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DenyAction {
    /// The call fails with this errno (positive, 1..=4095).
    Errno(i32),
    /// The process is killed by SIGSYS.
    Kill,
}

/// The calls a rule names: its number in each ABI's table (None where the
/// table has no such call).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Call {
    pub x86_64: Option<u64>,
    pub i386: Option<u64>,
}

impl Call {
    /// The x86-64 call `nr` only.
    pub fn x86_64(nr: u64) -> Call {
        Call { x86_64: Some(nr), i386: None }
    }

    /// The number of the call in `abi`'s table.
    pub fn nr(&self, abi: Abi) -> Option<u64> {
        match abi {
            Abi::X86_64 => self.x86_64,
            Abi::I386 => self.i386,
        }
    }
}

/// One rule of a policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PolicyRule {
    Deny { call: Call, action: DenyAction },
    Allow { call: Call },
}

impl PolicyRule {
    /// The syscalls the rule is about.
    pub fn call(&self) -> Call {
        match *self {
            PolicyRule::Deny { call, .. } | PolicyRule::Allow { call } => call,
        }
    }
}

/// A syscall by name (`openat`) or number (`257`): the call of that name or
/// number in each ABI's table (see the module comment); at least one table
/// must have it.
pub fn syscall_by_name(name: &str) -> Result<Call, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("missing syscall name".to_string());
    }
    let pick = |abi: Abi| -> Option<u64> {
        if name.bytes().all(|b| b.is_ascii_digit()) {
            name.parse::<u64>().ok().filter(|&nr| abi.lookup(nr).is_some())
        } else {
            abi.table().iter().find(|s| s.name == name).map(|s| s.nr as u64)
        }
    };
    let call = Call { x86_64: pick(Abi::X86_64), i386: pick(Abi::I386) };
    if call.x86_64.is_some() || call.i386.is_some() {
        Ok(call)
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        Err(format!("unknown syscall number '{name}'"))
    } else {
        Err(format!("unknown syscall '{name}'"))
    }
}

/// strace's `-e inject=SET:error=ERRNO` and `-e fault=SET[:error=ERRNO]`
/// (`fault`: the error defaults to ENOSYS, as in strace) as `--deny` specs,
/// `NAME=ERRNO`, one per call in SET. SET is strace's list: names, numbers,
/// classes (`%file`, `all`) and `?name` for a name that may not exist.
/// strace's other injection keys (`retval=`, `signal=`, `when=`, delays,
/// pokes) and negated sets are refused with an error naming them: a denied
/// call here never reaches the kernel and fails with its errno, every time.
pub fn inject_as_denials(spec: &str, fault: bool) -> Result<Vec<String>, String> {
    let mut parts = spec.split(':');
    let set = parts.next().unwrap_or("").trim();
    let mut errno = if fault { Some(libc::ENOSYS) } else { None };
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key.trim() {
            "error" => errno = Some(parse_errno(value)?),
            k @ ("retval" | "signal" | "syscall" | "delay_enter" | "delay_exit" | "poke_enter" | "poke_exit"
            | "when") => return Err(format!("'{k}=' is not supported: bt-run injects errors only (error=ERRNO)")),
            k => return Err(format!("unknown injection key '{k}'")),
        }
    }
    let errno = errno.ok_or("inject needs ':error=ERRNO' (bt-run injects errors only)")?;
    if set.starts_with('!') {
        return Err(format!("negated sets are not supported: '{set}'"));
    }
    if set.is_empty() {
        return Err("empty syscall list".to_string());
    }
    let mut names: Vec<String> = Vec::new();
    for raw in set.split(',') {
        let token = raw.trim();
        let optional = token.starts_with('?');
        let token = token.trim_start_matches('?');
        if let Some(class) = crate::classes::class_by_name(token) {
            for abi in Abi::ALL {
                for s in abi.table().iter().filter(|s| s.classes & class == class) {
                    if !names.iter().any(|n| n == s.name) {
                        names.push(s.name.to_string());
                    }
                }
            }
            continue;
        }
        match syscall_by_name(token) {
            Ok(_) => names.push(token.to_string()),
            Err(_) if optional => {}
            Err(e) => return Err(e),
        }
    }
    Ok(names.into_iter().map(|n| format!("{n}={errno}")).collect())
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
pub fn parse_deny(spec: &str) -> Result<(Call, DenyAction), String> {
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
                let (call, action) = parse_deny(rest).map_err(err)?;
                PolicyRule::Deny { call, action }
            }
            "allow" => {
                if rest.contains('=') {
                    return Err(err(format!("'allow' takes no action: '{rest}'")));
                }
                PolicyRule::Allow { call: syscall_by_name(rest).map_err(err)? }
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
    /// Per ABI (`Abi::index`): denied numbers.
    denied: [HashMap<u64, DenyAction>; 2],
}

impl Policy {
    /// Apply `rules` in order (later ones win).
    pub fn new(rules: &[PolicyRule]) -> Self {
        let mut p = Policy::default();
        for r in rules {
            for abi in Abi::ALL {
                let Some(nr) = r.call().nr(abi) else { continue };
                let denied = &mut p.denied[abi.index()];
                match *r {
                    PolicyRule::Deny { action, .. } => {
                        denied.insert(nr, action);
                    }
                    PolicyRule::Allow { .. } => {
                        denied.remove(&nr);
                    }
                }
            }
        }
        p
    }

    /// What to do instead of x86-64 syscall `nr`, if it is denied.
    pub fn action(&self, nr: u64) -> Option<DenyAction> {
        self.action_in(Abi::X86_64, nr)
    }

    /// What to do instead of syscall `nr` of `abi`, if it is denied.
    pub fn action_in(&self, abi: Abi, nr: u64) -> Option<DenyAction> {
        self.denied[abi.index()].get(&nr).copied()
    }

    /// Whether no call is denied.
    pub fn is_empty(&self) -> bool {
        self.denied.iter().all(HashMap::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(x86_64: u64, i386: u64) -> Call {
        Call { x86_64: Some(x86_64), i386: Some(i386) }
    }

    #[test]
    fn deny_specs() {
        let eperm = DenyAction::Errno(libc::EPERM);
        assert_eq!(parse_deny("openat"), Ok((both(257, 295), eperm)));
        assert_eq!(parse_deny("openat=EACCES"), Ok((both(257, 295), DenyAction::Errno(libc::EACCES))));
        assert_eq!(parse_deny("openat=eacces"), Ok((both(257, 295), DenyAction::Errno(libc::EACCES))));
        assert_eq!(parse_deny("socket=97"), Ok((both(41, 359), DenyAction::Errno(97))));
        assert_eq!(parse_deny("socket=EWOULDBLOCK"), Ok((both(41, 359), DenyAction::Errno(libc::EAGAIN))));
        assert_eq!(parse_deny("ptrace=kill"), Ok((both(101, 26), DenyAction::Kill)));
        assert_eq!(parse_deny("ptrace=KILL"), Ok((both(101, 26), DenyAction::Kill)));
        // A number is that number in each table (x86-64 execve, i386 oldolduname).
        assert_eq!(parse_deny("59"), Ok((both(59, 59), eperm)));
        assert_eq!(parse_deny("400"), Ok((Call { x86_64: None, i386: Some(400) }, eperm)));
        assert_eq!(parse_deny(" connect = ECONNREFUSED "), Ok((both(42, 362), DenyAction::Errno(libc::ECONNREFUSED))));
        // The same name in each table; names only one table has.
        assert_eq!(parse_deny("open"), Ok((both(2, 5), eperm)));
        assert_eq!(parse_deny("socketcall"), Ok((Call { x86_64: None, i386: Some(102) }, eperm)));
        assert_eq!(parse_deny("newfstatat"), Ok((Call::x86_64(262), eperm)));
    }

    #[test]
    fn strace_injections_become_denials() {
        let deny = |s: &str, fault: bool| inject_as_denials(s, fault);
        assert_eq!(deny("openat:error=EACCES", false), Ok(vec!["openat=13".to_string()]));
        assert_eq!(deny("open,openat:error=2", false), Ok(vec!["open=2".to_string(), "openat=2".to_string()]));
        assert_eq!(deny("openat", true), Ok(vec![format!("openat={}", libc::ENOSYS)]));
        assert_eq!(deny("openat:error=EPERM", true), Ok(vec!["openat=1".to_string()]));
        assert_eq!(deny("?no_such_call,close:error=EIO", false), Ok(vec!["close=5".to_string()]));
        // A class: every call in it, in either table, once.
        let net = deny("%network:error=EACCES", false).unwrap();
        for name in ["socket", "connect", "sendto", "recvmmsg_time64"] {
            assert!(net.contains(&format!("{name}=13")), "{name}: {net:?}");
        }
        assert!(!net.iter().any(|d| d.starts_with("openat=")), "{net:?}");
        assert_eq!(net.len(), net.iter().collect::<std::collections::HashSet<_>>().len());
        // Every spec is one --deny takes.
        for d in &net {
            assert!(parse_deny(d).is_ok(), "{d}");
        }
    }

    #[test]
    fn strace_injections_bt_run_cannot_honour_are_refused() {
        for (spec, fault, says) in [
            ("openat", false, "error=ERRNO"),
            ("openat:retval=0", false, "retval="),
            ("openat:error=EPERM:when=3+", false, "when="),
            ("openat:signal=SIGUSR1", false, "signal="),
            ("openat:error=EFOO", false, "EFOO"),
            ("!openat:error=EPERM", false, "negated"),
            ("opne:error=EPERM", false, "opne"),
            (":error=EPERM", true, "empty"),
            ("openat:colour=red", true, "colour"),
        ] {
            let e = inject_as_denials(spec, fault).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
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
        assert!(parse_deny("415").unwrap_err().contains("415"));
        assert!(parse_deny("9999").unwrap_err().contains("9999"));
    }

    #[test]
    fn policy_files() {
        let text = "# sandbox\n\ndeny socket=EACCES\ndeny ptrace=kill  # never\n  allow socket\ndeny openat\n";
        let rules = parse_policy(text).unwrap();
        assert_eq!(
            rules,
            vec![
                PolicyRule::Deny { call: both(41, 359), action: DenyAction::Errno(libc::EACCES) },
                PolicyRule::Deny { call: both(101, 26), action: DenyAction::Kill },
                PolicyRule::Allow { call: both(41, 359) },
                PolicyRule::Deny { call: both(257, 295), action: DenyAction::Errno(libc::EPERM) },
            ]
        );
        let p = Policy::new(&rules);
        assert_eq!(p.action(41), None);
        assert_eq!(p.action(101), Some(DenyAction::Kill));
        assert_eq!(p.action(257), Some(DenyAction::Errno(libc::EPERM)));
        assert_eq!(p.action(0), None);
        assert_eq!(p.action_in(Abi::I386, 26), Some(DenyAction::Kill));
        assert_eq!(p.action_in(Abi::I386, 295), Some(DenyAction::Errno(libc::EPERM)));
        assert_eq!(p.action_in(Abi::I386, 359), None);
        assert_eq!(p.action_in(Abi::I386, 257), None, "numbers are per table");
        assert_eq!(rules[2].call(), both(41, 359));

        let e = parse_policy("deny open\nblock read\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("block"), "{e}");
        let e = parse_policy("\n\n# c\ndeny nosuch=EPERM\n").unwrap_err();
        assert!(e.starts_with("line 4:") && e.contains("nosuch"), "{e}");
        let e = parse_policy("allow read=EPERM").unwrap_err();
        assert!(e.starts_with("line 1:"), "{e}");
        assert!(parse_policy("deny").unwrap_err().starts_with("line 1:"));
        assert_eq!(parse_policy("").unwrap(), vec![]);
    }

    #[test]
    fn later_rules_win_per_table() {
        // `allow fstat` lifts the x86-64 half of `deny 5` only.
        let p = Policy::new(&parse_policy("deny 5\nallow fstat\n").unwrap());
        assert_eq!(p.action(5), None);
        assert_eq!(p.action_in(Abi::I386, 5), Some(DenyAction::Errno(libc::EPERM)));
        assert!(!p.is_empty());
        assert!(Policy::new(&parse_policy("deny open\nallow open\n").unwrap()).is_empty());
    }
}
