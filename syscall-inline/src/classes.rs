//! Syscall classes as strace defines them (`-e trace=%file` and friends),
//! and [`TraceSet`], a parsed `-e trace=` specification.
//!
//! The class of every row comes from strace's own x86-64 and i386 tables
//! (`src/linux/{x86_64,i386}/syscallent.h`): `%file` calls take a file
//! name, `%desc` calls take or return a file descriptor, and so on.
//!
//! As in strace, a name, class or number selects calls in each ABI's table
//! (strace: in each personality): `open` is x86-64 `open` and i386 `open`
//! (`int $0x80`), `5` is x86-64 `fstat` and i386 `open`. A number that
//! names no call of its table is always traced, whatever the set, as
//! strace does (`syscall_0x…` lines).

use crate::Abi;

/// A set of class bits (see the constants below).
pub type Classes = u32;

/// Takes a file name (strace `%file`, `TF`).
pub const FILE: Classes = 1 << 0;
/// Takes or returns a file descriptor (`%desc`, `TD`).
pub const DESC: Classes = 1 << 1;
/// Network (`%network`, `%net`, `TN`).
pub const NET: Classes = 1 << 2;
/// Process management (`%process`, `TP`).
pub const PROC: Classes = 1 << 3;
/// Signals (`%signal`, `TS`).
pub const SIG: Classes = 1 << 4;
/// Memory mapping (`%memory`, `TM`).
pub const MEM: Classes = 1 << 5;
/// System V IPC (`%ipc`, `TI`).
pub const IPC: Classes = 1 << 6;
/// Reads or changes credentials (`%creds`, `TC`).
pub const CREDS: Classes = 1 << 7;
/// Reads or changes clocks (`%clock`, `TCL`).
pub const CLOCK: Classes = 1 << 8;
/// stat of a name (`%stat`, `TST`).
pub const STAT: Classes = 1 << 9;
/// lstat of a name (`%lstat`, `TLST`).
pub const LSTAT: Classes = 1 << 10;
/// stat of an fd (`%fstat`, `TFST`).
pub const FSTAT: Classes = 1 << 11;
/// Any stat variant (`%%stat`, `TSTA`).
pub const STAT_LIKE: Classes = 1 << 12;
/// statfs of a name (`%statfs`, `TSF`).
pub const STATFS: Classes = 1 << 13;
/// statfs of an fd (`%fstatfs`, `TFSF`).
pub const FSTATFS: Classes = 1 << 14;
/// Any statfs variant (`%%statfs`, `TSFA`).
pub const STATFS_LIKE: Classes = 1 << 15;
/// Takes no arguments and cannot fail (`%pure`, `PU`).
pub const PURE: Classes = 1 << 16;

/// Class names accepted after `%` (as in strace; case-insensitive).
pub static CLASS_NAMES: &[(&str, Classes)] = &[
    ("desc", DESC),
    ("file", FILE),
    ("memory", MEM),
    ("process", PROC),
    ("creds", CREDS),
    ("signal", SIG),
    ("ipc", IPC),
    ("net", NET),
    ("network", NET),
    ("stat", STAT),
    ("lstat", LSTAT),
    ("fstat", FSTAT),
    ("%stat", STAT_LIKE),
    ("statfs", STATFS),
    ("fstatfs", FSTATFS),
    ("%statfs", STATFS_LIKE),
    ("pure", PURE),
    ("clock", CLOCK),
];

/// strace's legacy spellings without `%` (a plain `stat` is the syscall).
static LEGACY_NAMES: &[(&str, Classes)] = &[
    ("desc", DESC),
    ("file", FILE),
    ("memory", MEM),
    ("process", PROC),
    ("signal", SIG),
    ("ipc", IPC),
    ("network", NET),
];

/// The class with this name (`"%file"`, `"file"`, `"%%stat"`), if any.
/// `all` is class 0, which every syscall matches.
pub fn class_by_name(token: &str) -> Option<Classes> {
    if token.eq_ignore_ascii_case("all") {
        return Some(0);
    }
    match token.strip_prefix('%') {
        Some(rest) => CLASS_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(rest)).map(|&(_, c)| c),
        None => LEGACY_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(token)).map(|&(_, c)| c),
    }
}

const WORDS: usize = crate::GATE_TABLE_LEN / 64;

/// A set of syscalls, as selected by strace's `-e trace=` syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSet {
    /// Per ABI (`Abi::index`): the listed numbers.
    bits: [[u64; WORDS]; 2],
    /// Set by `!`: membership is inverted.
    negated: bool,
}

impl Default for TraceSet {
    /// Everything, as strace traces by default.
    fn default() -> Self {
        Self::all()
    }
}

impl TraceSet {
    /// Every syscall, known or not.
    pub fn all() -> Self {
        Self { bits: [[0; WORDS]; 2], negated: true }
    }

    /// No syscall at all (but numbers no table names, as strace).
    pub fn none() -> Self {
        Self { bits: [[0; WORDS]; 2], negated: false }
    }

    /// Parse a `-e trace=` value: `open,close`, `%file,%network`, `file`,
    /// `all`, `none`, `!%memory`, numbers (`59`), and `?name` for a name
    /// that may not exist. A leading `!` (repeatable) inverts the whole set,
    /// as in strace. An optional `trace=` prefix is accepted.
    pub fn parse(spec: &str) -> Result<TraceSet, String> {
        let mut s = spec.trim();
        s = s.strip_prefix("trace=").unwrap_or(s);
        let mut negated = false;
        while let Some(rest) = s.strip_prefix('!') {
            negated = !negated;
            s = rest;
        }
        let mut set = TraceSet::none();
        match s {
            "none" => {}
            "all" => set.negated = true,
            "" => return Err(format!("empty syscall list in '{spec}'")),
            _ => {
                for raw in s.split(',') {
                    set.add_token(raw.trim())?;
                }
            }
        }
        set.negated ^= negated;
        Ok(set)
    }

    fn add_token(&mut self, raw: &str) -> Result<(), String> {
        let mut token = raw;
        let mut optional = false;
        while let Some(rest) = token.strip_prefix('?') {
            optional = true;
            token = rest;
        }
        let mut found = false;
        if token.is_empty() {
            return Err("empty syscall name in trace list".to_string());
        } else if token.as_bytes()[0].is_ascii_digit() {
            let Ok(nr) = token.parse::<u64>() else {
                return Err(format!("invalid syscall number '{token}'"));
            };
            for abi in Abi::ALL.into_iter().filter(|a| a.lookup(nr).is_some()) {
                self.insert(abi, nr);
                found = true;
            }
        } else if token.starts_with('/') {
            return Err(format!("regular expressions are not supported: '{token}'"));
        } else if let Some(class) = class_by_name(token) {
            for abi in Abi::ALL {
                for s in abi.table().iter().filter(|s| s.classes & class == class) {
                    self.insert(abi, s.nr as u64);
                }
            }
            found = true;
        } else {
            for abi in Abi::ALL {
                for s in abi.table().iter().filter(|s| s.name == token) {
                    self.insert(abi, s.nr as u64);
                    found = true;
                }
            }
        }
        if found || optional {
            Ok(())
        } else if token.starts_with('%') {
            Err(format!("unknown syscall class '{token}'"))
        } else if token.as_bytes()[0].is_ascii_digit() {
            Err(format!("unknown syscall number '{token}'"))
        } else {
            Err(format!("unknown syscall or class '{token}'"))
        }
    }

    fn insert(&mut self, abi: Abi, nr: u64) {
        if let Some(w) = self.bits[abi.index()].get_mut((nr / 64) as usize) {
            *w |= 1 << (nr % 64);
        }
    }

    /// Whether x86-64 syscall `nr` is selected.
    pub fn contains(&self, nr: u64) -> bool {
        self.contains_in(Abi::X86_64, nr)
    }

    /// Whether syscall `nr` of `abi` is selected. A number the table does
    /// not name is always traced, as strace does.
    pub fn contains_in(&self, abi: Abi, nr: u64) -> bool {
        if abi.lookup(nr).is_none() {
            return true;
        }
        let listed = self.bits[abi.index()].get((nr / 64) as usize).is_some_and(|w| w & (1 << (nr % 64)) != 0);
        listed != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SYSCALLS, name};

    fn nr(n: &str) -> u64 {
        SYSCALLS.iter().find(|s| s.name == n).unwrap().nr as u64
    }

    #[test]
    fn names_and_classes() {
        let s = TraceSet::parse("open,close").unwrap();
        assert!(s.contains(2) && s.contains(3) && !s.contains(0));
        let f = TraceSet::parse("%file").unwrap();
        assert_eq!(f, TraceSet::parse("file").unwrap());
        for n in ["open", "openat", "execve", "stat", "newfstatat", "readlink", "statx"] {
            assert!(f.contains(nr(n)), "{n} is %file");
        }
        for n in ["read", "close", "fstat", "mmap"] {
            assert!(!f.contains(nr(n)), "{n} is not %file");
        }
        let d = TraceSet::parse("%desc").unwrap();
        for n in ["read", "close", "fstat", "mmap", "openat", "dup2", "epoll_wait"] {
            assert!(d.contains(nr(n)), "{n} is %desc");
        }
        let net = TraceSet::parse("%network").unwrap();
        assert_eq!(net, TraceSet::parse("%net").unwrap());
        assert!(net.contains(nr("socket")) && net.contains(nr("sendfile")) && !net.contains(nr("read")));
        let p = TraceSet::parse("%process").unwrap();
        for n in ["clone", "clone3", "fork", "vfork", "execve", "exit", "exit_group", "wait4", "kill"] {
            assert!(p.contains(nr(n)), "{n} is %process");
        }
        let sig = TraceSet::parse("%signal").unwrap();
        for n in ["rt_sigaction", "rt_sigprocmask", "kill", "tgkill", "pause", "signalfd4"] {
            assert!(sig.contains(nr(n)), "{n} is %signal");
        }
        let m = TraceSet::parse("%memory").unwrap();
        for n in ["mmap", "munmap", "brk", "mprotect", "madvise", "mremap", "shmat"] {
            assert!(m.contains(nr(n)), "{n} is %memory");
        }
        assert!(!m.contains(nr("read")));
        let st = TraceSet::parse("%%stat").unwrap();
        assert!(st.contains(nr("stat")) && st.contains(nr("fstat")) && st.contains(nr("statx")));
        assert!(!st.contains(nr("statfs")));
        // "stat" alone is the syscall, not the class.
        let only = TraceSet::parse("stat").unwrap();
        assert!(only.contains(4) && !only.contains(5));
        // Class names are case-insensitive, as in strace.
        assert_eq!(TraceSet::parse("%FILE").unwrap(), f);
    }

    #[test]
    fn all_none_negation_numbers() {
        let all = TraceSet::parse("all").unwrap();
        assert!(all.contains(0) && all.contains(9999));
        let none = TraceSet::parse("none").unwrap();
        assert!(!none.contains(0) && !none.contains(1));
        // Numbers no table names are traced whatever the set, as strace.
        assert!(none.contains(9999) && none.contains(400) && none.contains_in(Abi::I386, 222));
        assert_eq!(TraceSet::parse("!none").unwrap(), all);
        assert_eq!(TraceSet::parse("!all").unwrap(), none);
        let not_mem = TraceSet::parse("!%memory").unwrap();
        assert!(!not_mem.contains(9) && not_mem.contains(0) && not_mem.contains(9999));
        assert_eq!(TraceSet::parse("!!open").unwrap(), TraceSet::parse("open").unwrap());
        let n = TraceSet::parse("59,exit_group").unwrap();
        assert!(n.contains(59) && n.contains(231) && !n.contains(60));
        assert_eq!(TraceSet::parse("trace=open").unwrap(), TraceSet::parse("open").unwrap());
        assert!(TraceSet::parse(" open , close ").unwrap().contains(3));
        assert!(TraceSet::parse("?nosuchcall,open").unwrap().contains(2));
        assert_eq!(name(nr("rseq")), Some("rseq"));
    }

    #[test]
    fn errors_name_the_culprit() {
        let e = TraceSet::parse("open,nosuchcall").unwrap_err();
        assert!(e.contains("nosuchcall"), "{e}");
        let e = TraceSet::parse("%nosuchclass").unwrap_err();
        assert!(e.contains("%nosuchclass") && e.contains("class"), "{e}");
        assert!(TraceSet::parse("").is_err());
        assert!(TraceSet::parse("open,,close").is_err());
        assert!(TraceSet::parse("!").is_err());
        assert!(TraceSet::parse("415").unwrap_err().contains("415"));
        assert!(TraceSet::parse("99999999999999999999999").is_err());
        assert!(TraceSet::parse("/open.*").is_err());
        // "creds" needs its '%', as in strace.
        assert!(TraceSet::parse("creds").is_err());
        assert!(TraceSet::parse("%creds").unwrap().contains(nr("setuid")));
    }

    #[test]
    fn selections_reach_each_abi() {
        let i = Abi::I386;
        let s = TraceSet::parse("open,write,getpid").unwrap();
        assert!(s.contains(2) && s.contains(1) && s.contains(39));
        assert!(s.contains_in(i, 5) && s.contains_in(i, 4) && s.contains_in(i, 20));
        assert!(!s.contains_in(i, 6) && !s.contains_in(i, 2));
        // Names only one table has.
        let s = TraceSet::parse("mmap2,_llseek").unwrap();
        assert!(s.contains_in(i, 192) && s.contains_in(i, 140) && !s.contains(9));
        // Numbers are per table: 5 is x86-64 fstat and i386 open.
        let s = TraceSet::parse("5").unwrap();
        assert!(s.contains(5) && s.contains_in(i, 5) && !s.contains(2));
        let s = TraceSet::parse("400").unwrap();
        assert!(s.contains_in(i, 400) && !s.contains_in(i, 401));
        // Classes from strace's i386 table.
        let f = TraceSet::parse("%file").unwrap();
        for n in [5, 8, 11, 106, 195, 295] {
            assert!(f.contains_in(i, n), "i386 {n} is %file");
        }
        assert!(!f.contains_in(i, 4) && !f.contains_in(i, 197));
        let m = TraceSet::parse("!%memory").unwrap();
        assert!(!m.contains_in(i, 192) && !m.contains_in(i, 45) && m.contains_in(i, 4));
    }
}
