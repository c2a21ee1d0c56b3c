//! Cases and their text format (`testsuite/equiv-corpus/*.case`):
//!
//! ```text
//! # bt-run equivalence case v1
//! # any comment lines: what diverged, how it was found
//! class: alu
//! seed: 0x0123456789abcdef
//! code: 48 01 d8 0f 92 c1
//! bt-args: --far-cache          (optional: extra bt-run arguments)
//! ```
//!
//! `code` is the snippet, encoded for address [`super::layout::SNIPPET`];
//! it may span several `code:` lines (they are concatenated). `seed` selects
//! the initial state (see [`super::state`], format version 1).

use std::path::{Path, PathBuf};

use super::class::Class;

/// One equivalence case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub class: Class,
    pub code: Vec<u8>,
    pub seed: u64,
    /// Extra arguments for bt-run (before the program).
    pub bt_args: Vec<String>,
    /// Comment lines (without the leading `# `).
    pub notes: Vec<String>,
}

pub const HEADER: &str = "# bt-run equivalence case v1";

impl Case {
    pub fn new(class: Class, code: Vec<u8>, seed: u64) -> Case {
        Case { class, code, seed, bt_args: Vec::new(), notes: Vec::new() }
    }

    /// The text form (round-trips through [`Case::parse`]).
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        for n in &self.notes {
            s.push_str(&format!("# {n}\n"));
        }
        s.push_str(&format!("class: {}\nseed: {:#018x}\n", self.class, self.seed));
        for chunk in self.code.chunks(32) {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            s.push_str(&format!("code: {}\n", hex.join(" ")));
        }
        if self.code.is_empty() {
            s.push_str("code:\n");
        }
        if !self.bt_args.is_empty() {
            s.push_str(&format!("bt-args: {}\n", self.bt_args.join(" ")));
        }
        s
    }

    /// A one-line form for logs: `class seed hex [bt-args]`.
    pub fn one_line(&self) -> String {
        let hex: String = self.code.iter().map(|b| format!("{b:02x}")).collect();
        let mut s = format!("{} {:#x} {hex}", self.class, self.seed);
        if !self.bt_args.is_empty() {
            s.push_str(&format!(" {}", self.bt_args.join(" ")));
        }
        s
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Case, String> {
        let mut class = None;
        let mut seed = None;
        let mut code = Vec::new();
        let mut saw_code = false;
        let mut bt_args = Vec::new();
        let mut notes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line == HEADER {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                notes.push(c.trim().to_string());
                continue;
            }
            let Some((key, val)) = line.split_once(':') else {
                return Err(format!("line {}: expected `key: value`", n + 1));
            };
            let val = val.trim();
            match key.trim() {
                "class" => class = Some(Class::from_name(val).ok_or_else(|| format!("unknown class {val:?}"))?),
                "seed" => {
                    let v = val.strip_prefix("0x").map_or_else(|| val.parse::<u64>(), |h| u64::from_str_radix(h, 16));
                    seed = Some(v.map_err(|e| format!("line {}: bad seed: {e}", n + 1))?);
                }
                "code" => {
                    saw_code = true;
                    let digits: String = val.chars().filter(|c| !c.is_whitespace()).collect();
                    if !digits.len().is_multiple_of(2) {
                        return Err(format!("line {}: odd number of hex digits", n + 1));
                    }
                    for i in (0..digits.len()).step_by(2) {
                        code.push(
                            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|e| format!("line {}: {e}", n + 1))?,
                        );
                    }
                }
                "bt-args" => bt_args.extend(val.split_whitespace().map(String::from)),
                k => return Err(format!("line {}: unknown key {k:?}", n + 1)),
            }
        }
        let notes = notes.into_iter().filter(|n| format!("# {n}") != HEADER).collect();
        match (class, seed, saw_code) {
            (Some(class), Some(seed), true) => Ok(Case { class, code, seed, bt_args, notes }),
            _ => Err("a case needs class, seed and code".into()),
        }
    }

    /// Reads one case file.
    pub fn load(path: &Path) -> Result<Case, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Case::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `testsuite/equiv-corpus`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("equiv-corpus")
}

/// Every `*.case` file of `dir`, sorted by name.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "case"));
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let mut c = Case::new(Class::Alu, (0..70).collect(), 0xdead_beef);
        c.notes.push("found by the campaign".into());
        c.bt_args.push("--far-cache".into());
        let t = c.to_text();
        assert_eq!(Case::parse(&t).unwrap(), c);
        assert!(Case::parse("class: alu\nseed: 1\n").is_err());
        assert!(Case::parse("class: nope\nseed: 1\ncode: 90\n").is_err());
        assert_eq!(Case::parse("class: x87\nseed: 12\ncode: d9 e8\n").unwrap().code, vec![0xd9, 0xe8]);
    }
}
