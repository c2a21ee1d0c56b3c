//! Equivalence against native execution (see `testsuite/src/equiv/mod.rs`
//! and docs/testing.md), plus the replay of the committed corpora:
//!
//! - `equivalence_random`: a proptest over generated cases (all classes this
//!   CPU supports); `EQUIV_CASES` (default 300), `EQUIV_SEED`,
//!   `EQUIV_CLASSES=alu,x87,...`, `EQUIV_BT_ARGS="--far-cache"`.
//! - `equivalence_corpus`: every `testsuite/equiv-corpus/*.case`.
//! - `equivalence_campaign` (ignored; `scripts/equiv-campaign.sh` runs it):
//!   N cases that do not stop at the first divergence; each divergence is
//!   shrunk and saved as a case file under `EQUIV_OUT`.
//! - `fuzz_corpus_translate`, `fuzz_corpus_elf_loader`,
//!   `fuzz_corpus_trace_args`: every file of `fuzz/corpus/<target>` through
//!   the fuzz oracles.
//! - `generator_*`: the generators keep their own rules (native runs), and
//!   every encoding they emit is valid by the SDM, AVX-512 included, checked
//!   on any host by decoding it back (`generator_avx512_encodings_are_valid`).

#[path = "../src/equiv/asm.rs"]
mod asm;
#[path = "../src/equiv/gen.rs"]
mod r#gen;
#[path = "../src/equiv/oracle.rs"]
mod oracle;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use testsuite::Status;
use testsuite::equiv::layout::{DUMP_LEN, SNIPPET};
use testsuite::equiv::run::{RunOutcome, run_native_only};
use testsuite::equiv::{Case, Class, Features, Stats, Verdict, corpus, elf, run_case};

/// Items per case.
const MAX_ITEMS: usize = 24;

/// (class index, items, state seed, far cache).
type Raw = (usize, Vec<(u16, u64)>, u64, bool);

/// A quarter of the cases run bt-run with `--far-cache` (code cache more
/// than 2 GiB from guest code: the far rip-relative rewrites), unless
/// `EQUIV_FAR=0`.
fn strategy(nclasses: usize) -> impl Strategy<Value = Raw> {
    let far = if std::env::var("EQUIV_FAR").is_ok_and(|v| v == "0") { 0.0 } else { 0.25 };
    (0..nclasses, vec((any::<u16>(), any::<u64>()), 1..=MAX_ITEMS), any::<u64>(), proptest::bool::weighted(far))
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn time_seed() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        ^ (std::process::id() as u64) << 32
}

fn classes(feats: &Features) -> Vec<Class> {
    let only = std::env::var("EQUIV_CLASSES").ok();
    let v = Class::available_list(feats, only.as_deref());
    assert!(!v.is_empty(), "no generator class available (EQUIV_CLASSES={only:?})");
    v
}

/// Says which classes this machine cannot run natively, and why (the
/// AVX-512 ones need avx512f: they run wherever it exists).
fn note_skipped_classes(feats: &Features) {
    for c in Class::ALL {
        if let Some(missing) = c.missing_feature(feats) {
            let what = match c {
                Class::Avx512 => "AVX-512 classes".to_string(),
                c => format!("{c} class"),
            };
            eprintln!("{what} not run natively: host lacks {missing}");
        }
    }
}

fn make_case(classes: &[Class], raw: &Raw, feats: &Features) -> Case {
    let class = classes[raw.0 % classes.len()];
    let mut c = Case::new(class, r#gen::generate(class, &raw.1, feats), raw.2);
    if raw.3 {
        c.bt_args.push("--far-cache".into());
    }
    c
}

/// Divergences already reported to bt-run's maintainers (each has a case in
/// testsuite/equiv-corpus/, which keeps failing until it is fixed), by name,
/// if `case` would hit one. The random test and the campaign skip such cases
/// unless `EQUIV_SKIP_KNOWN=0`, so that they keep looking for new problems;
/// the corpus replay always runs everything. Remove an entry here when its
/// bug is fixed.
fn known_issue(_case: &Case) -> Option<&'static str> {
    // None at the moment: the far rip-relative rewrite of AH/CH/DH/BH
    // instructions (riprel-far-high-byte-reg.case) and the signal-frame
    // fields (cr2, RF, ss_flags) are fixed.
    None
}

fn skip_known() -> bool {
    std::env::var("EQUIV_SKIP_KNOWN").map_or(true, |v| v != "0")
}

/// Runs `case` (no signal-frame field is blanked any more: the frame
/// differences once kept in testsuite/equiv-corpus/open are fixed).
fn run_known(case: &Case, feats: &Features) -> Verdict {
    run_case(case, feats)
}

fn report(case: &Case, v: &Verdict) -> String {
    format!(
        "bt-run differs from native on a `{}` case:\n{}snippet ({} bytes at {SNIPPET:#x}):\n{}\
         to keep it as a regression case, save this as testsuite/equiv-corpus/<name>.case:\n{}",
        case.class,
        v.describe(case),
        case.code.len(),
        r#gen::listing(&case.code),
        case.to_text()
    )
}

#[test]
fn equivalence_random() {
    let feats = Features::detect();
    note_skipped_classes(&feats);
    let classes = classes(&feats);
    let cases = env_u64("EQUIV_CASES").unwrap_or(300) as u32;
    let seed = env_u64("EQUIV_SEED").unwrap_or_else(time_seed);
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None; // divergences go to testsuite/equiv-corpus by hand
    config.rng_seed = RngSeed::Fixed(seed);
    config.max_shrink_iters = env_u64("EQUIV_SHRINK_ITERS").unwrap_or(400) as u32;
    let stats = Stats::new();
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let mut runner = TestRunner::new(config);
    let skip = skip_known();
    let skipped = AtomicU64::new(0);
    let result = runner.run(&strategy(classes.len()), |raw| {
        let case = make_case(&classes, &raw, &feats);
        if skip && known_issue(&case).is_some() {
            skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let v = run_known(&case, &feats);
        if !failed.load(Ordering::Relaxed) {
            stats.record(case.class, &v);
        }
        if v.same() {
            Ok(())
        } else {
            failed.store(true, Ordering::Relaxed);
            Err(TestCaseError::fail(report(&case, &v)))
        }
    });
    eprintln!(
        "equivalence_random: seed {seed:#x} (EQUIV_SEED), {} cases in {:.1?} ({} skipped as known issues)\n{}",
        stats.total_run(),
        start.elapsed(),
        skipped.load(Ordering::Relaxed),
        stats.table()
    );
    if let Err(e) = result {
        panic!("{e}\n(reproduce the whole run with EQUIV_SEED={seed:#x})");
    }
}

#[test]
fn equivalence_corpus() {
    let feats = Features::detect();
    let dir = corpus::corpus_dir();
    let files = corpus::corpus_files(&dir);
    let mut failures = Vec::new();
    for f in &files {
        let case = match Case::load(f) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let v = run_case(&case, &feats);
        if !v.same() {
            failures.push(format!("{}:\n{}", f.display(), report(&case, &v)));
        }
    }
    eprintln!("equivalence_corpus: {} cases replayed from {}", files.len(), dir.display());
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases diverge:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// Shrinks a failing value tree (proptest's algorithm, bounded).
fn shrink<T: ValueTree<Value = Raw>>(
    tree: &mut T,
    fails: &mut dyn FnMut(&Raw) -> Option<(Case, Verdict)>,
    mut last: (Case, Verdict),
) -> (Case, Verdict) {
    let mut budget = env_u64("EQUIV_SHRINK_ITERS").unwrap_or(300);
    if !tree.simplify() {
        return last;
    }
    while budget > 0 {
        budget -= 1;
        match fails(&tree.current()) {
            Some(f) => {
                last = f;
                if !tree.simplify() {
                    break;
                }
            }
            None => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    last
}

/// A coarse signature of a divergence, to save only a few of each kind.
fn signature(case: &Case, v: &Verdict) -> String {
    let first = testsuite::equiv::dump::diff(&v.native.stdout, &v.bt.stdout, v.vec_level)
        .first()
        .map(|l| l.split(':').next().unwrap_or("").split(' ').take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{}|{}|{}|{}", case.class, v.native.status, v.bt.status, first)
}

#[test]
#[ignore = "long: run by scripts/equiv-campaign.sh"]
fn equivalence_campaign() {
    let feats = Features::detect();
    let classes = classes(&feats);
    let n = env_u64("EQUIV_CASES").unwrap_or(100_000);
    let seed = env_u64("EQUIV_SEED").unwrap_or_else(time_seed);
    let out = std::env::var_os("EQUIV_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| testsuite::workspace_root().join("target/equiv-campaign"));
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let max_per_sig = env_u64("EQUIV_MAX_PER_KIND").unwrap_or(3);
    let mut config = Config::with_cases(1);
    config.rng_seed = RngSeed::Fixed(seed);
    let mut runner = TestRunner::new(config);
    let strat = strategy(classes.len());
    let stats = Stats::new();
    let mut kinds: HashMap<String, u64> = HashMap::new();
    let mut saved = 0;
    let skip = skip_known();
    let mut skipped = 0u64;
    let start = Instant::now();
    eprintln!(
        "campaign: {n} cases, seed {seed:#x}, classes {:?}, output {}",
        classes.iter().map(|c| c.name()).collect::<Vec<_>>(),
        out.display()
    );
    for i in 0..n {
        let mut tree = strat.new_tree(&mut runner).expect("strategy");
        let raw = tree.current();
        let case = make_case(&classes, &raw, &feats);
        if skip && known_issue(&case).is_some() {
            skipped += 1;
            continue;
        }
        let v = run_known(&case, &feats);
        stats.record(case.class, &v);
        if !v.same() {
            let sig = signature(&case, &v);
            let count = kinds.entry(sig.clone()).or_insert(0);
            *count += 1;
            if *count <= max_per_sig {
                let mut fails = |raw: &Raw| {
                    let c = make_case(&classes, raw, &feats);
                    if c.class != case.class || (skip && known_issue(&c).is_some()) {
                        return None;
                    }
                    let v = run_known(&c, &feats);
                    (!v.same()).then_some((c, v))
                };
                let (mut min, mv) = shrink(&mut tree, &mut fails, (case.clone(), v.clone()));
                min.notes.push(format!("found by equivalence_campaign, seed {seed:#x}, case {i}"));
                min.notes.push(format!("kind: {sig}"));
                let path = out.join(format!("{}-{:x}-{i}.case", min.class, seed));
                let _ = std::fs::write(&path, min.to_text());
                let _ = std::fs::write(path.with_extension("txt"), report(&min, &mv));
                saved += 1;
                eprintln!(
                    "DIVERGENCE #{saved} [{sig}] case {i}: {} ({} bytes) -> {}",
                    min.one_line(),
                    min.code.len(),
                    path.display()
                );
            }
        }
        if (i + 1) % 2000 == 0 {
            eprintln!(
                "campaign: {} / {n} cases, {} divergences, {:.0?}",
                i + 1,
                stats.total_diverged(),
                start.elapsed()
            );
        }
    }
    let table = stats.table();
    let mut kinds_sorted: Vec<_> = kinds.into_iter().collect();
    kinds_sorted.sort_by_key(|k| std::cmp::Reverse(k.1));
    let kinds_text: Vec<String> = kinds_sorted.iter().map(|(k, c)| format!("{c:>7}  {k}")).collect();
    let summary = format!(
        "seed {seed:#x}, {} cases in {:.1?} ({skipped} skipped as known issues), bt-run args {:?}\n{table}divergence kinds:\n{}\n",
        stats.total_run(),
        start.elapsed(),
        testsuite::equiv::run::env_bt_args(),
        kinds_text.join("\n")
    );
    let _ = std::fs::write(out.join(format!("summary-{seed:x}.txt")), &summary);
    eprintln!("{summary}");
    assert_eq!(stats.total_diverged(), 0, "divergences found; cases saved in {}", out.display());
}

/// Prints generated cases (listing, verdict, corpus text) without judging:
/// `EQUIV_CLASSES=x87 EQUIV_CASES=3 cargo test --release -p testsuite --test
/// equivalence -- --ignored --nocapture equivalence_show`. With
/// `EQUIV_CASE_FILE=path.case` it shows that case instead, and with
/// `EQUIV_WRITE_EXE=path` it also writes the executable for debugging.
#[test]
#[ignore = "debugging aid"]
fn equivalence_show() {
    let feats = Features::detect();
    let cases: Vec<Case> = if let Some(f) = std::env::var_os("EQUIV_CASE_FILE") {
        vec![Case::load(std::path::Path::new(&f)).unwrap_or_else(|e| panic!("{e}"))]
    } else {
        let classes = classes(&feats);
        let mut c = Config::with_cases(1);
        c.rng_seed = RngSeed::Fixed(env_u64("EQUIV_SEED").unwrap_or_else(time_seed));
        let mut runner = TestRunner::new(c);
        (0..env_u64("EQUIV_CASES").unwrap_or(3))
            .map(|_| {
                make_case(&classes, &strategy(classes.len()).new_tree(&mut runner).expect("tree").current(), &feats)
            })
            .collect()
    };
    for case in cases {
        let v = run_case(&case, &feats);
        if let Some(p) = std::env::var_os("EQUIV_WRITE_EXE") {
            testsuite::equiv::run::write_exe(&case, &feats, std::path::Path::new(&p)).expect("write exe");
        }
        eprintln!(
            "--- {} case, {} bytes, native {}, bt-run {}, same: {}\n{}{}{}",
            case.class,
            case.code.len(),
            v.native.status,
            v.bt.status,
            v.same(),
            r#gen::listing(&case.code),
            if v.same() { String::new() } else { v.describe(&case) },
            case.to_text()
        );
    }
}

/// Native runs only: generated code obeys the generator's rules (it runs to
/// the end natively, except divisions that fault on purpose).
#[test]
fn generator_cases_run_natively() {
    let feats = Features::detect();
    note_skipped_classes(&feats);
    let level = feats.vector_level();
    let mut runner = TestRunner::new({
        let mut c = Config::with_cases(1);
        c.rng_seed = RngSeed::Fixed(env_u64("EQUIV_SEED").unwrap_or(7));
        c
    });
    let mut bad = Vec::new();
    let mut empty = 0;
    for class in Class::available_list(&feats, None) {
        for _ in 0..12 {
            let raw = vec((any::<u16>(), any::<u64>()), 4..=MAX_ITEMS).new_tree(&mut runner).expect("tree").current();
            let code = r#gen::generate(class, &raw, &feats);
            if code.is_empty() {
                empty += 1;
            }
            let out: RunOutcome = run_native_only(&elf::build(&code, 1, level));
            let fpe = out.status == Status::signal(libc::SIGFPE);
            let signaled = matches!(out.status, Status::Signaled { .. });
            let ok = (out.status == Status::Exited(0) && out.stdout.len() == DUMP_LEN as usize)
                || (fpe && class == Class::MulDiv)
                || (signaled && class == Class::Fault);
            if !ok {
                bad.push(format!("{class}: native {}\n{}", out.status, r#gen::listing(&code)));
            }
        }
    }
    assert!(empty < 3, "{empty} generated snippets were empty");
    assert!(bad.is_empty(), "generated code misbehaves natively:\n{}", bad.join("\n"));
}

/// The EVEX (and every other) encoding the generators emit is one a CPU
/// accepts, checked on any host without running it: every class is generated
/// for a CPU with every feature the generators know (AVX-512 F/BW/DQ/VL/CD
/// included, whatever this machine has), each instruction of each snippet is
/// decoded back by iced-x86 in its default mode (which decodes many #UD
/// encodings as INVALID: EVEX.z with a memory destination or without a mask,
/// EVEX.b on register forms without rounding or SAE, EVEX.aaa = 000 where a
/// mask is required...) and must come back as the same `Code` with the same
/// masking, broadcast and rounding; and [`sdm_evex_problems`] checks the
/// rules of the SDM (Vol. 2, 2.7 "EVEX encoding" and its exception classes)
/// that the decoder does not. `EQUIV_VALID_CASES` cases per class (default
/// 150; 20 times that for avx512 and 10 times for riprel, the classes with
/// EVEX forms), `EQUIV_SEED`.
#[test]
fn generator_avx512_encodings_are_valid() {
    let feats = Features::all();
    let per_class = env_u64("EQUIV_VALID_CASES").unwrap_or(150);
    let seed = env_u64("EQUIV_SEED").unwrap_or(0x5eed_e7e4);
    let mut rng = testsuite::equiv::state::Rng::new(seed);
    let start = Instant::now();
    let (mut cases, mut checked, mut evex, mut invalid) = (0u64, 0u64, 0u64, 0u64);
    // (problem, code) -> (count, first example)
    let mut bad: std::collections::BTreeMap<(String, String), (u64, String)> = Default::default();
    let mut per_problem: HashMap<String, u64> = HashMap::new();
    for class in Class::ALL {
        let n = match class {
            Class::Avx512 => per_class * 20,
            Class::RipRel => per_class * 10,
            _ => per_class,
        };
        for _ in 0..n {
            let len = 1 + rng.below(MAX_ITEMS as u64);
            let items: Vec<(u16, u64)> = (0..len).map(|_| (rng.next_u64() as u16, rng.next_u64())).collect();
            let (code, listed) = r#gen::generate_listed(class, &items, &feats);
            cases += 1;
            for (k, (ip, ins)) in listed.iter().enumerate() {
                let end = listed.get(k + 1).map_or(SNIPPET + code.len() as u64, |n| n.0);
                let bytes = &code[(ip - SNIPPET) as usize..(end - SNIPPET) as usize];
                if ins.code().encoding() == iced_x86::EncodingKind::EVEX {
                    evex += 1;
                }
                checked += 1;
                let problems = encoding_problems(bytes, *ip, ins);
                if problems.is_empty() {
                    continue;
                }
                invalid += 1;
                for p in problems {
                    *per_problem.entry(p.clone()).or_default() += 1;
                    let e = bad
                        .entry((p, format!("{:?}", ins.code())))
                        .or_insert_with(|| (0, format!("{class}: {}", format_ins(ins, bytes))));
                    e.0 += 1;
                }
            }
        }
    }
    eprintln!(
        "generator_avx512_encodings_are_valid: seed {seed:#x}, {cases} cases, {checked} \
         instructions ({evex} EVEX) decoded back in {:.1?}; {invalid} invalid",
        start.elapsed()
    );
    note_skipped_classes(&Features::detect());
    if invalid > 0 {
        let mut rules: Vec<_> = per_problem.into_iter().collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.1));
        let rules: Vec<String> = rules.iter().map(|(p, c)| format!("{c:>7}  {p}")).collect();
        let listed: Vec<String> = bad.iter().map(|((p, c), (n, ex))| format!("{p}: {c} ({n}x), e.g. {ex}")).collect();
        panic!(
            "{invalid} of {checked} generated instructions are invalid encodings \
             (reproduce with EQUIV_SEED={seed:#x}):\n{}\n\n{}",
            rules.join("\n"),
            listed.join("\n")
        );
    }
}

/// `bytes` (the encoding of `ins` at `ip`) and its Intel syntax.
fn format_ins(ins: &iced_x86::Instruction, bytes: &[u8]) -> String {
    let mut s = String::new();
    let mut f = iced_x86::IntelFormatter::new();
    iced_x86::Formatter::format(&mut f, ins, &mut s);
    let raw: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{s}  [{}]", raw.join(" "))
}

/// What is wrong with the encoding `bytes` of the generated instruction `ins`
/// at `ip` (nothing for data bytes, which the fault class uses on purpose).
fn encoding_problems(bytes: &[u8], ip: u64, ins: &iced_x86::Instruction) -> Vec<String> {
    use iced_x86::{Code as C, Decoder, DecoderOptions};
    if matches!(ins.code(), C::DeclareByte | C::DeclareWord | C::DeclareDword | C::DeclareQword) {
        return Vec::new();
    }
    let mut p = Vec::new();
    let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let x = d.decode();
    if x.code() == C::INVALID {
        p.push("iced-x86 decodes it as INVALID".to_string());
    } else {
        // `xchg eax, eax` (ax, rax) is encoded as 90, which 64-bit mode
        // executes as nop (rax is not zero-extended): a valid encoding, just
        // not an exchange; native and bt-run runs execute the same bytes.
        let nop_alias = matches!(
            (ins.code(), x.code()),
            (C::Xchg_r16_AX, C::Nopw) | (C::Xchg_r32_EAX, C::Nopd) | (C::Xchg_r64_RAX, C::Nopq)
        );
        if x.code() != ins.code() && !nop_alias {
            p.push(format!("decodes as {:?}", x.code()));
        }
        if x.len() != bytes.len() {
            p.push(format!("decodes {} of its {} bytes", x.len(), bytes.len()));
        }
        if (x.op_mask(), x.zeroing_masking(), x.is_broadcast())
            != (ins.op_mask(), ins.zeroing_masking(), ins.is_broadcast())
        {
            p.push("decodes with other masking or broadcast".to_string());
        }
        if x.rounding_control() != ins.rounding_control()
            || x.suppress_all_exceptions() != ins.suppress_all_exceptions()
        {
            p.push("decodes with other rounding or SAE".to_string());
        }
    }
    p.extend(sdm_evex_problems(ins).into_iter().map(String::from));
    p
}

/// The SDM's EVEX rules (Vol. 2, 2.7 and the exception classes E1-E12),
/// checked from the generated instruction and its `Code` name, whatever the
/// decoder says: each is a #UD on a real CPU.
fn sdm_evex_problems(ins: &iced_x86::Instruction) -> Vec<&'static str> {
    use iced_x86::{EncodingKind, OpKind, Register, RoundingControl};
    let mut p = Vec::new();
    let name = format!("{:?}", ins.code());
    let is_evex = ins.code().encoding() == EncodingKind::EVEX;
    let masked = ins.op_mask() != Register::None;
    let z = ins.zeroing_masking();
    let bcst = ins.is_broadcast();
    let er = ins.rounding_control() != RoundingControl::None;
    let sae = ins.suppress_all_exceptions();
    if !is_evex {
        if masked || z || bcst || er || sae {
            p.push("EVEX masking, broadcast, rounding or SAE on a non-EVEX encoding");
        }
        let high = (0..ins.op_count()).any(|i| {
            ins.op_kind(i) == OpKind::Register && {
                let r = ins.op_register(i);
                (r.is_xmm() || r.is_ymm() || r.is_zmm()) && r.number() >= 16
            }
        });
        if high {
            p.push("xmm16-31 outside EVEX");
        }
        return p;
    }
    // Operand tokens of the name (`EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er`),
    // without the masking / rounding decorations.
    let toks: Vec<&str> = name.split('_').skip(2).collect();
    let form_z = toks.contains(&"k1z");
    let form_k = form_z || toks.contains(&"k1");
    let form_er = toks.contains(&"er");
    let form_sae = form_er || toks.contains(&"sae");
    let ops: Vec<&str> = toks.iter().copied().filter(|t| !matches!(*t, "k1" | "k1z" | "er" | "sae")).collect();
    let mem = (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory);
    let vsib =
        mem.is_some() && (ins.memory_index().is_xmm() || ins.memory_index().is_ymm() || ins.memory_index().is_zmm());
    if masked && !form_k {
        p.push("opmask on a form that takes none (EVEX.aaa must be 000)");
    }
    if vsib && !masked {
        p.push("gather/scatter without an opmask (EVEX.aaa = 000)");
    }
    if z {
        if !masked {
            p.push("zeroing-masking with EVEX.aaa = 000");
        }
        if !form_z {
            p.push("zeroing-masking on a form without {z}");
        }
        if mem == Some(0) {
            p.push("zeroing-masking with a memory destination");
        }
        if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register && ins.op0_register().is_k() {
            p.push("zeroing-masking with an opmask destination");
        }
    }
    if bcst {
        match mem {
            None => p.push("EVEX.b broadcast without a memory operand"),
            Some(i) => {
                let tok = ops.get(i as usize).copied().unwrap_or("");
                // `zmmm512b32`: a memory operand that may be a broadcast.
                let can = tok.rsplit_once('b').is_some_and(|(a, b)| {
                    !b.is_empty()
                        && b.bytes().all(|c| c.is_ascii_digit())
                        && a.bytes().last().is_some_and(|c| c.is_ascii_digit())
                });
                if !can {
                    p.push("EVEX.b broadcast on a memory operand without {1toN}");
                }
                if i == 0 {
                    p.push("EVEX.b broadcast on a memory destination");
                }
            }
        }
    }
    if er || sae {
        if mem.is_some() {
            p.push("embedded rounding/SAE with a memory operand (EVEX.b means broadcast there)");
        }
        if er && !form_er {
            p.push("embedded rounding on a form without {er}");
        }
        if sae && !form_sae {
            p.push("SAE on a form without {sae}");
        }
    }
    p
}

/// The checks of `generator_avx512_encodings_are_valid` fire on encodings
/// that break each rule (most of which iced-x86's encoder refuses to encode,
/// so the generator cannot emit them; the decoder and `sdm_evex_problems` are
/// checked here on instructions built by hand).
#[test]
fn generator_validity_oracle_catches_invalid_encodings() {
    use iced_x86::{Code as C, Encoder, Instruction, MemoryOperand, Register as R, RoundingControl};
    let m = MemoryOperand::with_base_displ(R::R15, 0x40);
    let ins = |r: Result<Instruction, iced_x86::IcedError>| r.expect("instruction");
    // Encodable, and each a #UD: zeroing-masking with a memory destination
    // (the bug found in the generator), zeroing-masking without a mask,
    // rounding with a memory operand (EVEX.b then means broadcast).
    let mut z_store = ins(Instruction::with2(C::EVEX_Vmovups_zmmm512_k1z_zmm, m, R::ZMM1));
    z_store.set_op_mask(R::K1);
    z_store.set_zeroing_masking(true);
    let mut z_k0 = ins(Instruction::with3(C::EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er, R::ZMM1, R::ZMM2, R::ZMM3));
    z_k0.set_zeroing_masking(true);
    let mut er_mem = ins(Instruction::with3(C::EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er, R::ZMM1, R::ZMM2, m));
    er_mem.set_rounding_control(RoundingControl::RoundDown);
    for (bad, rule) in [
        (z_store, "zeroing-masking with a memory destination"),
        (z_k0, "zeroing-masking with EVEX.aaa = 000"),
        (er_mem, "embedded rounding/SAE with a memory operand"),
    ] {
        let mut enc = Encoder::new(64);
        let len = enc.encode(&bad, SNIPPET).expect("encodable");
        let bytes = enc.take_buffer();
        assert_eq!(len, bytes.len());
        let p = encoding_problems(&bytes, SNIPPET, &bad);
        assert!(p.iter().any(|p| p.starts_with(rule)), "{rule}: {p:?} for {}", format_ins(&bad, &bytes));
        assert!(
            p.iter().any(|p| p.contains("INVALID") || p.starts_with("decodes")),
            "the decoder accepts {}: {p:?}",
            format_ins(&bad, &bytes)
        );
    }
    // Not encodable by iced-x86 (its encoder refuses them), checked by the
    // SDM rules alone.
    let mut z_cmp = ins(Instruction::with3(C::EVEX_Vpcmpeqd_kr_k1_zmm_zmmm512b32, R::K2, R::ZMM1, R::ZMM2));
    z_cmp.set_op_mask(R::K1);
    z_cmp.set_zeroing_masking(true);
    let mut b_no_bcst = ins(Instruction::with2(C::EVEX_Vmovups_zmm_k1z_zmmm512, R::ZMM1, m));
    b_no_bcst.set_is_broadcast(true);
    let mut b_reg = ins(Instruction::with3(C::EVEX_Vpaddd_zmm_k1z_zmm_zmmm512b32, R::ZMM1, R::ZMM2, R::ZMM3));
    b_reg.set_is_broadcast(true);
    let mut er_no = ins(Instruction::with3(C::EVEX_Vpaddd_zmm_k1z_zmm_zmmm512b32, R::ZMM1, R::ZMM2, R::ZMM3));
    er_no.set_rounding_control(RoundingControl::RoundUp);
    let mut sae_no = ins(Instruction::with3(C::EVEX_Vpaddd_zmm_k1z_zmm_zmmm512b32, R::ZMM1, R::ZMM2, R::ZMM3));
    sae_no.set_suppress_all_exceptions(true);
    let mut k_no = ins(Instruction::with2(C::EVEX_Vpmovm2d_zmm_kr, R::ZMM1, R::K2));
    k_no.set_op_mask(R::K3);
    let vsib = MemoryOperand::new(R::R15, R::XMM5, 4, 0x40, 8, false, R::None);
    let gather = ins(Instruction::with2(C::EVEX_Vpgatherdd_xmm_k1_vm32x, R::XMM1, vsib));
    let mut vex_z = ins(Instruction::with3(C::VEX_Vpaddd_ymm_ymm_ymmm256, R::YMM1, R::YMM2, R::YMM3));
    vex_z.set_zeroing_masking(true);
    for (bad, rule) in [
        (z_cmp, "zeroing-masking on a form without {z}"),
        (z_cmp, "zeroing-masking with an opmask destination"),
        (b_no_bcst, "EVEX.b broadcast on a memory operand without {1toN}"),
        (b_reg, "EVEX.b broadcast without a memory operand"),
        (er_no, "embedded rounding on a form without {er}"),
        (sae_no, "SAE on a form without {sae}"),
        (k_no, "opmask on a form that takes none"),
        (gather, "gather/scatter without an opmask"),
        (vex_z, "EVEX masking, broadcast, rounding or SAE on a non-EVEX encoding"),
    ] {
        let p = sdm_evex_problems(&bad);
        assert!(p.iter().any(|p| p.starts_with(rule)), "{rule}: {p:?}");
    }
    // And valid forms pass.
    let mut ok = ins(Instruction::with3(C::EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er, R::ZMM1, R::ZMM2, m));
    ok.set_op_mask(R::K1);
    ok.set_zeroing_masking(true);
    ok.set_is_broadcast(true);
    let mut er = ins(Instruction::with3(C::EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er, R::ZMM17, R::ZMM2, R::ZMM31));
    er.set_rounding_control(RoundingControl::RoundTowardZero);
    let mut store = ins(Instruction::with2(C::EVEX_Vmovups_zmmm512_k1z_zmm, m, R::ZMM1));
    store.set_op_mask(R::K7);
    for good in [ok, er, store] {
        let mut enc = Encoder::new(64);
        enc.encode(&good, SNIPPET).expect("encodable");
        let bytes = enc.take_buffer();
        let p = encoding_problems(&bytes, SNIPPET, &good);
        assert!(p.is_empty(), "{}: {p:?}", format_ins(&good, &bytes));
    }
}

#[test]
fn generator_covers_the_instruction_tables() {
    let feats = Features::detect();
    let f = r#gen::Forms::get(&feats);
    eprintln!("forms: {}", f.summary());
    assert!(f.alu.len() > 200 && f.shift.len() > 50 && f.muldiv.len() > 20 && f.x87.len() > 50, "{}", f.summary());
    assert!(f.sse.len() > 150, "{}", f.summary());
    if feats.avx2 {
        assert!(f.avx.len() > 300, "{}", f.summary());
    }
}

#[test]
fn harness_smoke() {
    let feats = Features::detect();
    // Empty snippet: the epilogue alone.
    let v = run_case(&Case::new(Class::Alu, vec![], 3), &feats);
    assert_eq!(v.native.status, Status::Exited(0), "{:?}", String::from_utf8_lossy(&v.native.stderr));
    assert_eq!(v.native.stdout.len(), DUMP_LEN as usize);
    assert!(v.same(), "{}", report(&Case::new(Class::Alu, vec![], 3), &v));
    // xor ecx, ecx; div rcx: SIGFPE natively.
    let c = Case::new(Class::MulDiv, vec![0x31, 0xC9, 0x48, 0xF7, 0xF1], 3);
    let v = run_case(&c, &feats);
    assert_eq!(v.native.status, Status::signal(libc::SIGFPE));
    assert!(v.same(), "{}", report(&c, &v));
}

fn fuzz_corpus(target: &str) -> Vec<PathBuf> {
    let dir = testsuite::workspace_root().join("fuzz/corpus").join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let files = fuzz_corpus(target);
    let mut failures = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let r = std::panic::catch_unwind(|| check(&data));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", f.display())),
            Err(p) => {
                let msg =
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                failures.push(format!("{}: panicked: {}", f.display(), msg.unwrap_or_default()));
            }
        }
    }
    eprintln!("fuzz corpus {target}: {} inputs replayed", files.len());
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn fuzz_corpus_translate() {
    replay("translate", oracle::check_translate_input);
}

#[test]
fn fuzz_corpus_elf_loader() {
    replay("elf_loader", oracle::check_elf_input);
}

/// Removes `fuzz/corpus/translate` inputs that only re-hit bugs already
/// reported (`oracle::known_issue`; a long `BT_FUZZ_SKIP_KNOWN=1` run keeps
/// them because they return early), except the named reproducers
/// (`crash-*`). `scripts/fuzz.sh cmin translate` runs it after `cargo fuzz cmin`.
#[test]
#[ignore = "maintenance: run by scripts/fuzz.sh cmin"]
fn fuzz_corpus_prune_known_issues() {
    let mut removed = 0;
    for f in fuzz_corpus("translate") {
        let named = f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("crash-"));
        let data = std::fs::read(&f).unwrap_or_default();
        if !named && oracle::known_issue(&data).is_some() {
            std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            removed += 1;
        }
    }
    eprintln!("removed {removed} inputs that hit known issues");
}

#[test]
fn fuzz_corpus_trace_args() {
    replay("trace_args", oracle::check_trace_input);
}
