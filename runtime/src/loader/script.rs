//! `#!` scripts: parses the first line exactly as the kernel's binfmt_script
//! does, and rewrites argv the way the kernel does before running the
//! interpreter. Pure, no I/O.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// How many bytes of the file the kernel looks at (BINPRM_BUF_SIZE).
pub const SCRIPT_HEAD_LEN: usize = 256;

/// The interpreter line of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    pub interp: OsString,
    /// Everything after the interpreter name, as one argument (not split).
    pub arg: Option<OsString>,
}

/// Whether `head` (the file's first bytes) starts with `#!`.
pub fn is_script(head: &[u8]) -> bool {
    head.starts_with(b"#!")
}

fn spacetab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn terminator(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == 0
}

/// A `#!` line the kernel would refuse (ENOEXEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad #! line: no interpreter name, or one longer than the first 256 bytes")]
pub struct BadShebang;

/// Parses a `#!` line. Fails like the kernel (ENOEXEC) when there is no
/// interpreter name, or the name is cut off by the 256-byte limit.
pub fn parse_shebang(head: &[u8]) -> Result<Shebang, BadShebang> {
    let mut buf = [0u8; SCRIPT_HEAD_LEN];
    let n = head.len().min(SCRIPT_HEAD_LEN);
    buf[..n].copy_from_slice(&head[..n]);
    if !is_script(&buf) {
        return Err(BadShebang);
    }
    let buf_end = SCRIPT_HEAD_LEN - 1;
    // strnchr: the newline, searched only up to the first NUL.
    let newline = buf.iter().take_while(|&&b| b != 0).position(|&b| b == b'\n');
    let mut i_end = match newline {
        Some(p) => p,
        None => {
            let first = (2..buf_end).find(|&i| !spacetab(buf[i])).ok_or(BadShebang)?;
            if !(first..buf_end).any(|i| terminator(buf[i])) {
                return Err(BadShebang); // interpreter path truncated
            }
            buf_end
        }
    };
    while i_end > 2 && spacetab(buf[i_end - 1]) {
        i_end -= 1;
    }
    let i_name = (2..i_end).find(|&i| !spacetab(buf[i])).ok_or(BadShebang)?;
    let i_sep = (i_name..i_end).find(|&i| terminator(buf[i]));
    let name = &buf[i_name..i_sep.unwrap_or(i_end)];
    let arg = match i_sep {
        Some(sep) if buf[sep] != 0 => (sep..i_end).find(|&i| !spacetab(buf[i])).map(|a| {
            let raw = &buf[a..i_end];
            let cut = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            OsStr::from_bytes(&raw[..cut]).to_os_string()
        }),
        _ => None,
    };
    if name.is_empty() {
        return Err(BadShebang);
    }
    Ok(Shebang { interp: OsStr::from_bytes(name).to_os_string(), arg })
}

/// The argv the interpreter gets: `[interp, arg?, script, argv[1..]]`
/// (the kernel drops argv[0] and puts the script's path in its place).
pub fn interpreter_argv(sb: &Shebang, script: &OsStr, argv: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(sb.interp.clone());
    if let Some(a) = &sb.arg {
        out.push(a.clone());
    }
    out.push(script.to_os_string());
    out.extend(argv.iter().skip(1).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(s: &str) -> Result<(String, Option<String>), ()> {
        parse_shebang(s.as_bytes())
            .map_err(|_| ())
            .map(|s| (s.interp.to_string_lossy().into_owned(), s.arg.map(|a| a.to_string_lossy().into_owned())))
    }

    #[test]
    fn loader_script_lines_like_the_kernel() {
        assert_eq!(sb("#!/bin/sh\necho"), Ok(("/bin/sh".into(), None)));
        assert_eq!(sb("#! /bin/sh  \n"), Ok(("/bin/sh".into(), None)));
        assert_eq!(sb("#!/usr/bin/env python3 -u \nx"), Ok(("/usr/bin/env".into(), Some("python3 -u".into()))));
        assert_eq!(sb("#!/bin/sh"), Ok(("/bin/sh".into(), None)));
        assert_eq!(sb("#!\t/bin/bash\t-e\n"), Ok(("/bin/bash".into(), Some("-e".into()))));
        assert_eq!(sb("#!\n"), Err(()));
        assert_eq!(sb("#!   \n"), Err(()));
        assert_eq!(sb("echo"), Err(()));
        let long = format!("#!/{}", "a".repeat(300));
        assert_eq!(sb(&long), Err(()));
        let long_arg = format!("#!/bin/sh {}", "a".repeat(300));
        assert_eq!(sb(&long_arg).unwrap().0, "/bin/sh");
    }

    #[test]
    fn loader_script_argv_rewrite() {
        let s = Shebang { interp: "/bin/sh".into(), arg: Some("-e".into()) };
        let argv: Vec<OsString> = vec!["x".into(), "a".into(), "b".into()];
        let out = interpreter_argv(&s, OsStr::new("./x.sh"), &argv);
        assert_eq!(out, ["/bin/sh", "-e", "./x.sh", "a", "b"].map(OsString::from).to_vec());
        let out = interpreter_argv(&s, OsStr::new("./x.sh"), &[]);
        assert_eq!(out, ["/bin/sh", "-e", "./x.sh"].map(OsString::from).to_vec());
    }
}
