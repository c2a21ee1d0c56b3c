//! The command line: one definition (clap's derive) from which `--help`,
//! the man page and the shell completions are generated, and its meaning as
//! `Options` for the run.
//!
//! strace's spellings keep strace's meaning (docs/design.md, "strace's
//! spellings"); where two options set the same thing (`-c`/`-C`,
//! `-t`/`-r`, `--trace`/`-e trace=`) the later one on the command line wins,
//! as in strace, which is why the argument indices are consulted below.
//!
//! Every error here is a usage error: one line, exit status 2.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, ValueHint};

use crate::{Options, perf_map};

/// The exit status of a usage error, as for strace and most tools.
pub const USAGE_ERROR: i32 = 2;

const ABOUT: &str = "Run an unmodified x86-64 Linux program under dynamic binary translation";

const LONG_ABOUT: &str = "\
Run PROG, an unmodified x86-64 Linux program, under dynamic binary
translation: every instruction executes from bt-run's code cache and every
system call passes through bt-run's in-process syscall layer, which answers,
forwards, traces, counts or denies it. The program's output, exit status or
death by signal are what they are natively.";

const AFTER_LONG_HELP: &str = "\
Exit status: the program's own, or 128+N when it dies by signal N (bt-run
then dies by the same signal); 2 for a usage error; 126 when PROG cannot be
executed; 127 when it is not found; 125 when bt-run itself fails.

Examples:
  bt-run ls -l                      run ls under translation
  bt-run -e trace=%file ls          trace ls's file calls, as strace would
  bt-run -c -o calls.txt make       strace -c's table for make and its children
  bt-run --deny connect=EACCES curl https://example.org
                                    run curl with connect() failing";

const STRACE: &str = "strace's spellings, with strace's meaning";
const INTERNAL: &str = "Used by bt-run itself";

/// `bt-run [OPTIONS] [--] PROG [ARGS...]`.
#[derive(Parser, Debug)]
#[command(
    name = "bt-run",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP,
    override_usage = "bt-run [OPTIONS] [--] PROG [ARGS...]",
    // A repeated option is not an error (strace accepts `-c -c`).
    args_override_self = true,
    max_term_width = 100
)]
pub struct Args {
    /// Print code-cache and per-syscall statistics at exit (=json: as one
    /// JSON object per process image)
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, value_parser = ["json"])]
    stats: Option<Option<String>>,

    /// Print each system call strace-style; SET as strace's -e trace=
    /// (names, %file %desc %network %process %signal %memory ..., !negation;
    /// default all)
    #[arg(long, value_name = "SET", num_args = 0..=1, require_equals = true,
          default_missing_value = "all", action = ArgAction::Append)]
    trace: Vec<String>,

    /// Make syscall NAME fail with ERRNO (default EPERM) or kill the program
    /// with SIGSYS (repeatable); a name or number selects the x86-64 call and
    /// the i386 call (int $0x80) of that name or number, as in strace
    #[arg(long, value_name = "NAME[=ERRNO|kill]")]
    deny: Vec<String>,

    /// Read deny/allow rules from FILE, one per line: `deny NAME[=ERRNO|kill]`
    /// or `allow NAME`
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    policy: Option<PathBuf>,

    /// Install a seccomp filter before the program runs that lets system
    /// calls reach the kernel only from bt-run's own code, as the run's
    /// syscall table allows, and kills the program with a one-line report
    /// otherwise (on whenever --deny, --policy or -e inject= is given)
    #[arg(long)]
    isolate: bool,

    /// Forward every syscall to the kernel, even those bt-run can answer
    /// in-process (getpid, getuid, ...)
    #[arg(long)]
    no_inline: bool,

    /// Write trace lines and statistics to FILE (appended) instead of
    /// bt-run's stderr; either way the program cannot see or touch where
    /// they go
    #[arg(short = 'o', long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    output: Option<PathBuf>,

    /// Let programs started by execve run natively
    #[arg(long)]
    no_follow: bool,

    /// Pass NAME as the program's argv[0] (default: PROG)
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    argv0: Option<OsString>,

    /// Code cache size in MiB (1 to 1024, default 256)
    #[arg(long, value_name = "MIB", value_parser = cache_size, allow_negative_numbers = true)]
    cache_size: Option<usize>,

    /// Name translated code for `perf report` in /tmp/perf-PID.map: each
    /// block by its guest place (file+offset), or with =insns each
    /// translated instruction, entry check and exit stub
    #[arg(long, value_name = "DETAIL", num_args = 0..=1, require_equals = true, value_parser = ["insns"])]
    perf_map: Option<Option<String>>,

    /// Place the code cache far from guest code (testing)
    #[arg(long)]
    far_cache: bool,

    /// Start translated code N bytes (a multiple of 16 below 4096) into the
    /// code cache: the same translations at another place, to measure how
    /// much a workload's speed depends on where its code lands
    #[arg(long, value_name = "N", value_parser = code_offset, allow_negative_numbers = true)]
    code_offset: Option<usize>,

    /// Write bt-run's man page (man) or a completion script for bash, zsh
    /// or fish to stdout, and exit (scripts/install.sh installs them)
    #[arg(long, value_name = "WHAT",
          value_parser = ["man", "complete-bash", "complete-zsh", "complete-fish"])]
    generate: Option<String>,

    /// strace -e: trace=SET (or a bare SET) as --trace=SET;
    /// inject=SET:error=ERRNO and fault=SET[:error=ERRNO] as --deny for each
    /// call in SET (fault's error is ENOSYS unless given); other injection
    /// keys (retval=, signal=, when=, delays) are refused
    #[arg(short = 'e', value_name = "EXPR", help_heading = STRACE, allow_hyphen_values = true)]
    expr: Vec<String>,

    /// As -e inject=SET:error=ERRNO
    #[arg(long, value_name = "SET:error=ERRNO", help_heading = STRACE)]
    inject: Vec<String>,

    /// As -e fault=SET[:error=ERRNO]
    #[arg(long, value_name = "SET[:error=ERRNO]", help_heading = STRACE)]
    fault: Vec<String>,

    /// Print strace -c's table at exit, per process image (% time, seconds,
    /// usecs/call, calls, errors, syscall; the time is that of the kernel
    /// call as bt-run saw it), and how many calls were answered in-process
    #[arg(short = 'c', long, help_heading = STRACE)]
    summary_only: bool,

    /// The trace lines as well as -c's table
    #[arg(short = 'C', long, help_heading = STRACE)]
    summary: bool,

    /// End each trace line with the call's time, <S.UUUUUU>
    #[arg(short = 'T', long, help_heading = STRACE)]
    syscall_times: bool,

    /// Start each trace line with the time of day; -tt with microseconds,
    /// -ttt as seconds since the epoch
    #[arg(short = 't', action = ArgAction::Count, help_heading = STRACE)]
    timestamps: u8,

    /// Start each trace line with the time since the previous call began
    #[arg(short = 'r', long, help_heading = STRACE)]
    relative_timestamps: bool,

    /// Show what each descriptor refers to: 3</etc/passwd>; -yy also the
    /// addresses of sockets and the numbers of devices
    #[arg(short = 'y', long, action = ArgAction::Count, help_heading = STRACE)]
    decode_fds: u8,

    /// Cut strings in trace lines after STRSIZE bytes (default 32)
    #[arg(short = 's', long, value_name = "STRSIZE", value_parser = string_limit, allow_negative_numbers = true, help_heading = STRACE)]
    string_limit: Option<usize>,

    /// Accepted: programs started by fork, clone and execve are always
    /// followed; -ff as --output-separately
    #[arg(short = 'f', long, action = ArgAction::Count, help_heading = STRACE)]
    follow_forks: u8,

    /// With -o FILE: each thread's lines (and each process's statistics)
    /// go to FILE.TID, without the [pid N] prefix
    #[arg(long, help_heading = STRACE)]
    output_separately: bool,

    /// bt-run prints no attach messages; -qq also leaves out the
    /// `+++ exited with N +++` lines
    #[arg(short = 'q', long, action = ArgAction::Count, help_heading = STRACE)]
    quiet: u8,

    /// Refused: bt-run runs the program it starts, it cannot attach to a
    /// running one
    #[arg(short = 'p', long, value_name = "PID", help_heading = STRACE)]
    attach: Vec<String>,

    /// Take over open descriptors OUT for trace lines and statistics and
    /// ERR for bt-run's messages (- for none); must come first
    #[arg(long, value_name = "OUT,ERR", allow_hyphen_values = true, help_heading = INTERNAL, hide = true)]
    own_fds: Option<String>,

    /// The address ranges older images' isolation filters name, which this
    /// image must land clear of
    #[arg(long, value_name = "N:RANGES", require_equals = true, help_heading = INTERNAL, hide = true)]
    isolated: Option<String>,

    /// Trace lines go to the -o file of the image that started this one
    /// (they start with the bare thread id)
    #[arg(long, help_heading = INTERNAL, hide = true)]
    to_output_file: bool,

    /// The trace line of the execve that started this image, printed with
    /// its result once the image runs
    #[arg(long, value_name = "LINE", require_equals = true, allow_hyphen_values = true, help_heading = INTERNAL, hide = true)]
    exec_line: Option<String>,

    /// The program: a path, or a name looked up in $PATH
    #[arg(value_name = "PROG", value_hint = ValueHint::CommandName)]
    prog: Option<OsString>,

    /// The program's arguments, passed as they are
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true,
          value_hint = ValueHint::CommandWithArguments)]
    args: Vec<OsString>,
}

fn bounded(v: &str, what: &str, ok: impl Fn(usize) -> bool) -> Result<usize, String> {
    v.parse().ok().filter(|&n| ok(n)).ok_or_else(|| format!("'{v}' is not {what}"))
}

fn cache_size(v: &str) -> Result<usize, String> {
    bounded(v, "a size from 1 to 1024 MiB", |m| (1..=1024).contains(&m))
}

fn code_offset(v: &str) -> Result<usize, String> {
    bounded(v, "a multiple of 16 below 4096", |n| n < 4096 && n.is_multiple_of(16))
}

fn string_limit(v: &str) -> Result<usize, String> {
    bounded(v, "a string size up to 1048576", |n| n <= 1 << 20)
}

/// What the command line asks for.
pub enum Parsed {
    /// Run a program.
    Run(Box<Cli>),
    /// Print this to stdout and exit with status 0 (--help, --version,
    /// --generate).
    Print(Vec<u8>),
}

/// A run: its options and the program.
pub struct Cli {
    pub opts: Options,
    pub argv0: Option<OsString>,
    pub prog: OsString,
    pub args: Vec<OsString>,
}

/// A usage error: one line, without the `bt-run: ` prefix.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! usage {
    ($($t:tt)*) => { UsageError(format!($($t)*)) };
}

/// clap's error as one line: its first, without "error: ", and a pointer to
/// --help.
fn one_line(e: &clap::Error) -> UsageError {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    usage!("{first} (bt-run --help lists the options)")
}

/// The last position on the command line of option `id`, if given.
fn last(m: &ArgMatches, id: &str) -> Option<usize> {
    // (Flags have a default value, with an index of its own.)
    if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
        return None;
    }
    m.indices_of(id).and_then(|i| i.max())
}

/// Each value of option `id` with its position on the command line.
fn placed<'a>(m: &'a ArgMatches, id: &str) -> Vec<(usize, &'a String)> {
    if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
        return Vec::new();
    }
    match (m.indices_of(id), m.get_many::<String>(id)) {
        (Some(i), Some(v)) => i.zip(v).collect(),
        _ => Vec::new(),
    }
}

/// The command line bt-run was started with (`args[0]` is bt-run itself).
pub fn parse(args: &[OsString]) -> Result<Parsed, UsageError> {
    let cmd = Args::command();
    // bt-run's options end at PROG: what follows is the program's, even
    // where it looks like one of bt-run's options (or is `--`).
    let mut argv = args.to_vec();
    if let Some(p) = program_index(&cmd, args)
        && args[p - 1] != "--"
    {
        argv.insert(p, "--".into());
    }
    let matches = match cmd.try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Parsed::Print(e.render().to_string().into())),
                _ => Err(one_line(&e)),
            };
        }
    };
    let a = Args::from_arg_matches(&matches).map_err(|e| one_line(&e))?;
    if let Some(what) = &a.generate {
        return generate(what).map(Parsed::Print);
    }
    if a.own_fds.is_some() && args.get(1).is_none_or(|a| a != "--own-fds") {
        return Err(usage!("invalid --own-fds: it must be the first option"));
    }
    if !a.attach.is_empty() {
        return Err(usage!(
            "invalid -p: bt-run cannot attach to a running process (it translates the programs it starts)"
        ));
    }
    let Some(prog) = a.prog.clone() else {
        return Err(usage!(
            "no program given (usage: bt-run [OPTIONS] [--] PROG [ARGS...]; bt-run --help lists the options)"
        ));
    };
    let mut cli = Cli { opts: Options::default(), argv0: a.argv0.clone(), prog, args: a.args.clone() };
    options(&a, &matches, &mut cli.opts)?;
    Ok(Parsed::Run(Box::new(cli)))
}

/// Where PROG is in `args`: the first argument that is neither an option
/// nor an option's value, or the one after `--`.
fn program_index(cmd: &clap::Command, args: &[OsString]) -> Option<usize> {
    // Does this option take the next argument as its value?
    let takes_value =
        |arg: Option<&clap::Arg>| arg.is_some_and(|a| a.get_action().takes_values() && !a.is_require_equals_set());
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_encoded_bytes();
        if a == b"--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if let Some(long) = a.strip_prefix(b"--") {
            if !long.contains(&b'=') {
                let long = String::from_utf8_lossy(long);
                if takes_value(cmd.get_arguments().find(|x| x.get_long() == Some(long.as_ref()))) {
                    i += 1;
                }
            }
        } else if a.len() > 1 && a[0] == b'-' {
            // A cluster of short options: the first that takes a value
            // takes the rest of the cluster, or the next argument.
            for (k, &c) in a.iter().enumerate().skip(1) {
                if takes_value(cmd.get_arguments().find(|x| x.get_short() == Some(c as char))) {
                    if k + 1 == a.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The run's options, and the arguments that give a re-executed bt-run the
/// same ones.
fn options(a: &Args, m: &ArgMatches, opts: &mut Options) -> Result<(), UsageError> {
    use syscall_inline::layer::Stamps;
    let mut inherit: Vec<OsString> = Vec::new();
    let mut deny: Vec<String> = a.deny.clone();

    // Trace sets: --trace and -e in command-line order, the last one wins.
    let mut exprs: Vec<(usize, String)> =
        placed(m, "trace").into_iter().map(|(i, v)| (i, format!("trace={v}"))).collect();
    exprs.extend(placed(m, "expr").into_iter().map(|(i, v)| (i, v.clone())));
    exprs.extend(placed(m, "inject").into_iter().map(|(i, v)| (i, format!("inject={v}"))));
    exprs.extend(placed(m, "fault").into_iter().map(|(i, v)| (i, format!("fault={v}"))));
    exprs.sort_by_key(|(i, _)| *i);
    let mut trace: Option<String> = None;
    // -e inject= and fault=: the calls marked (INJECTED), and the
    // expressions a re-executed bt-run is given.
    let (mut injected, mut injects) = (Vec::new(), Vec::new());
    let given_denials = deny.len();
    for (_, e) in &exprs {
        strace_expr(e, &mut trace, &mut deny, &mut injected, &mut injects)?;
    }
    if !injected.is_empty() {
        opts.observers.injected = Some(syscall_inline::TraceSet::parse(&injected.join(",")).map_err(UsageError)?);
    }

    opts.stats = a.stats.is_some();
    opts.stats_json = matches!(&a.stats, Some(Some(_)));
    // -c or -C, whichever comes last.
    let summary_traces = match (last(m, "summary_only"), last(m, "summary")) {
        (None, None) => None,
        (c, big_c) => Some(big_c > c),
    };
    opts.summary = summary_traces.is_some();
    if opts.summary {
        opts.stats = true;
    }
    if let Some(n) = a.string_limit {
        syscall_inline::trace::set_max_strlen(n);
        inherit.extend(["-s".into(), n.to_string().into()]);
    }
    if a.syscall_times {
        opts.observers.timed = true;
        opts.observers.show_times = true;
        inherit.push("-T".into());
    }
    if a.decode_fds > 0 {
        crate::observe::decode_fds(a.decode_fds);
        inherit.push(if a.decode_fds > 1 { "-yy" } else { "-y" }.into());
    }
    // -t, -tt, -ttt or -r, whichever comes last.
    opts.observers.stamps = match (last(m, "timestamps"), last(m, "relative_timestamps")) {
        (t, r) if r > t => Stamps::Relative,
        (Some(_), _) => match a.timestamps {
            1 => Stamps::Seconds,
            2 => Stamps::Micros,
            _ => Stamps::Epoch,
        },
        _ => Stamps::None,
    };
    match opts.observers.stamps {
        Stamps::None => {}
        Stamps::Seconds => inherit.push("-t".into()),
        Stamps::Micros => inherit.push("-tt".into()),
        Stamps::Epoch => inherit.push("-ttt".into()),
        Stamps::Relative => inherit.push("-r".into()),
    }
    // -ff: one file per thread, FILE.TID (without -o it changes nothing, as
    // in strace).
    if (a.follow_forks >= 2 || a.output_separately)
        && let Some(f) = &a.output
    {
        let f = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        crate::own_fds::set_separate(&f);
        opts.observers.prefix = syscall_inline::layer::PidPrefix::None;
        inherit.extend(["--output-separately".into(), "-o".into(), f.into_os_string()]);
    }
    // -qq: no exit lines.
    if a.quiet >= 2 {
        opts.observers.quiet_exits = true;
        inherit.push("-qq".into());
    }
    opts.exec_line.clone_from(&a.exec_line);
    opts.no_follow = a.no_follow;
    opts.isolate = a.isolate;
    if let Some(v) = &a.isolated {
        opts.isolated_from = crate::isolate::Inherited::parse(v).map_err(UsageError)?;
        opts.isolate = true;
    }
    opts.no_inline = a.no_inline;
    opts.far_cache = a.far_cache;
    if let Some(d) = &a.perf_map {
        opts.perf_map = Some(perf_map::Detail::parse(d.as_deref()).map_err(UsageError)?);
    }
    opts.output.clone_from(&a.output);
    // strace -f -o FILE names the thread by its bare id.
    if (a.output.is_some() || a.to_output_file) && opts.observers.prefix == syscall_inline::layer::PidPrefix::Bracketed
    {
        opts.observers.prefix = syscall_inline::layer::PidPrefix::Plain;
        inherit.push("--to-output-file".into());
    }
    opts.code_offset = a.code_offset.unwrap_or(0);
    opts.cache_size = a.cache_size.map_or(0, |mib| mib << 20);

    // Deny rules: the policy file's, then the command line's.
    let mut rules = Vec::new();
    if let Some(f) = &a.policy {
        let text = std::fs::read_to_string(f)
            .map_err(|e| usage!("cannot read policy file {}: {}", f.display(), crate::loader::io_reason(&e)))?;
        rules = syscall_inline::parse_policy(&text).map_err(|e| usage!("{}: {e}", f.display()))?;
    }
    for d in &deny {
        let (call, action) = syscall_inline::parse_deny(d).map_err(|e| usage!("invalid --deny '{d}': {e}"))?;
        rules.push(syscall_inline::PolicyRule::Deny { call, action });
    }
    if !rules.is_empty() {
        // A policy is only as good as what stops the program going around it.
        opts.isolate = true;
    }
    if opts.isolate {
        // io_uring's operations reach files and memory without system
        // calls the layer sees: as on a kernel without io_uring. The same
        // for userfaultfd's copies into memory, and for the mappings the
        // kernel places itself where the runtime cannot choose (io_setup's
        // ring, a shadow stack), which would land beside bt-run's memory
        // (see `guest_space`).
        for name in
            ["io_uring_setup", "io_uring_enter", "io_uring_register", "io_setup", "userfaultfd", "map_shadow_stack"]
        {
            let call = syscall_inline::policy::syscall_by_name(name).map_err(UsageError)?;
            rules.push(syscall_inline::PolicyRule::Deny {
                call,
                action: syscall_inline::DenyAction::Errno(libc::ENOSYS),
            });
        }
        opts.observers.policy = Some(std::sync::Arc::new(syscall_inline::policy::Policy::new(&rules)));
    }
    let parse_set = |t: &str| syscall_inline::TraceSet::parse(t).map_err(|e| usage!("invalid --trace '{t}': {e}"));
    // -c's trace set, for a re-executed bt-run (-c prints no trace lines).
    let mut counted_only: Option<String> = None;
    if let Some(with_traces) = summary_traces {
        opts.observers.timed = true;
        if with_traces && trace.is_none() {
            trace = Some("all".to_string());
        }
        // A trace set selects the calls the table counts, as in strace.
        if let Some(t) = &trace {
            opts.summary_only = Some(parse_set(t)?);
        }
        if !with_traces {
            counted_only = trace.take();
        }
        inherit.push(if with_traces { "-C" } else { "-c" }.into());
        if let Some(t) = &counted_only {
            inherit.push(format!("--trace={t}").into());
        }
    } else if opts.stats {
        inherit.push(if opts.stats_json { "--stats=json" } else { "--stats" }.into());
    }
    if let Some(t) = &trace {
        opts.observers.trace = Some(parse_set(t)?);
        inherit.push(format!("--trace={t}").into());
    }
    for d in &deny[..given_denials] {
        inherit.push(format!("--deny={d}").into());
    }
    for e in &injects {
        inherit.extend(["-e".into(), e.into()]);
    }
    if let Some(f) = &a.policy {
        inherit.push("--policy".into());
        inherit.push(std::path::absolute(f).unwrap_or_else(|_| f.clone()).into_os_string());
    }
    if opts.no_inline {
        inherit.push("--no-inline".into());
    }
    if opts.isolate {
        if opts.no_follow {
            return Err(usage!(
                "invalid --no-follow: programs run natively would be outside the isolation --isolate, --deny and --policy need"
            ));
        }
        // (`--isolated=`, the ranges of this image's filter, is added at
        // the exec, once they are known.)
        inherit.push("--isolate".into());
    }
    // (Output: a re-executed bt-run takes over this one's descriptors, see
    // `own_fds::ExecGuard`.)
    if opts.far_cache {
        inherit.push("--far-cache".into());
    }
    if let Some(d) = opts.perf_map {
        inherit.push(d.option().into());
    }
    if opts.code_offset != 0 {
        inherit.extend(["--code-offset".into(), opts.code_offset.to_string().into()]);
    }
    if opts.cache_size != 0 {
        inherit.extend(["--cache-size".into(), (opts.cache_size >> 20).to_string().into()]);
    }
    opts.inherit = inherit;
    Ok(())
}

/// One strace `-e` expression: `trace=SET` (or a bare SET) selects the
/// traced calls, as `--trace=SET`; `inject=SET:error=ERRNO` and
/// `fault=SET[:error=ERRNO]` deny each call of SET, as `--deny` (adding
/// `deny` specs, the calls' names to `injected` and the expression to
/// `injects`). Later trace sets replace earlier ones, as `--trace` does.
fn strace_expr(
    expr: &str,
    trace: &mut Option<String>,
    deny: &mut Vec<String>,
    injected: &mut Vec<String>,
    injects: &mut Vec<String>,
) -> Result<(), UsageError> {
    let (qualifier, value) = match expr.split_once('=') {
        Some((q, v)) if !q.contains(',') && !q.starts_with('!') && !q.starts_with('%') => (q, v),
        _ => ("trace", expr),
    };
    match qualifier {
        "trace" | "t" => {
            syscall_inline::TraceSet::parse(value).map_err(|e| usage!("invalid -e '{expr}': {e}"))?;
            *trace = Some(value.to_string());
        }
        "inject" | "fault" => {
            let specs = syscall_inline::policy::inject_as_denials(value, qualifier == "fault")
                .map_err(|e| usage!("invalid -e '{expr}': {e}"))?;
            injected.extend(specs.iter().map(|s| s.split_once('=').map_or(s.as_str(), |(name, _)| name).to_string()));
            injects.push(expr.to_string());
            deny.extend(specs);
        }
        q => {
            return Err(usage!(
                "invalid -e '{expr}': strace's '{q}=' qualifier is not supported (trace=, inject= and fault= are)"
            ));
        }
    }
    Ok(())
}

/// `--generate WHAT`: the man page or a completion script, from the same
/// definition as the parser.
fn generate(what: &str) -> Result<Vec<u8>, UsageError> {
    use clap_complete::Shell;
    let mut cmd = Args::command();
    let mut out = Vec::new();
    let shell = match what {
        "man" => {
            clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| usage!("cannot write the man page: {e}"))?;
            return Ok(out);
        }
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        _ => return Err(usage!("invalid --generate '{what}'")),
    };
    clap_complete::generate(shell, &mut cmd, "bt-run", &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
