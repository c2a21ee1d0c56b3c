//! Real dynamically linked programs from the machine (coreutils, bash,
//! python3, perl, gcc, g++, git, tar, gzip, xz, bzip2, file, find, make) and
//! the dynamic loader itself, each run natively and under bt-run with the same
//! arguments, environment, stdin and a fresh working directory prepared the
//! same way, and compared: stdout, stderr and exit status (or death by
//! signal). Most workloads start child processes, which bt-run must follow
//! through execve so that they run translated too (`children_stay_translated`
//! proves they do).
//!
//! Every workload is an entry of [`workloads`]; each has its own `#[test]`,
//! and the ignored test `corpus_timing` (driven by `bench/corpus.sh`) times
//! the whole corpus natively and under bt-run.
//!
//! Programs are named by absolute path where the machine may have a second
//! copy earlier in `$PATH` (e.g. a locally built git in /usr/local/bin).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;
use testsuite::*;

/// 2020-09-13T12:26:40Z
const FIXED_TIME: u64 = 1_600_000_000;

/// Native limit of a workload; bt-run gets `min(this, 30 s + 50 x native)`.
const LONG: Duration = Duration::from_secs(600);

const BASH: &str = "/bin/bash";
const PYTHON: &str = "/usr/bin/python3";
const PERL: &str = "/usr/bin/perl";
const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

// ---------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------

/// One workload: commands run (each in its own fresh directory prepared by
/// `setup`), and an extra check of the native outcomes that makes sure the
/// workload really exercises what it claims to.
struct Workload {
    name: &'static str,
    setup: fn(&Path),
    cmds: fn() -> Vec<Cmd>,
    check_native: fn(&[Outcome]),
}

fn no_setup(_: &Path) {}
fn no_check(_: &[Outcome]) {}

macro_rules! corpus {
    ($($name:ident => ($setup:expr, $cmds:expr $(, $check:expr)?);)*) => {
        fn workloads() -> Vec<Workload> {
            vec![$(Workload {
                name: stringify!($name),
                setup: $setup,
                cmds: $cmds,
                check_native: corpus!(@check $($check)?),
            }),*]
        }
        $(
            #[test]
            fn $name() {
                run_workload(stringify!($name));
            }
        )*
    };
    (@check) => { no_check };
    (@check $check:expr) => { $check };
}

corpus! {
    ls_la_fixed_tree => (make_tree, ls_cmds);
    bash_functions_arrays_pipes => (no_setup, || vec![bash(BASH_SCRIPT)]);
    bash_exit_statuses => (make_bad_programs, bash_status_cmds);
    bash_child_signals => (setup_signal_script, bash_signal_cmds);
    python_compute => (no_setup, || vec![python(PY_COMPUTE)]);
    python_json_re_hashlib_zlib => (no_setup, || vec![python(PY_STDLIB)]);
    python_subprocess => (make_bad_programs, || vec![python(PY_SUBPROCESS)]);
    python_fork => (no_setup, || vec![python(PY_FORK)]);
    python_multiprocessing_pool => (no_setup, || vec![python(PY_MULTIPROCESSING)]);
    python_threads => (no_setup, || vec![python(PY_THREADS)]);
    python_sys_executable => (no_setup, python_executable_cmds);
    perl_regex_sort_hashes => (no_setup, || vec![Cmd::new(&[PERL, "-e", PERL_SCRIPT])]);
    gcc_compile_link_run => (write_c_project, || vec![bash(GCC_SCRIPT)], check_gcc);
    gxx_exceptions_stl => (write_cxx_program, || vec![bash(GXX_SCRIPT)], check_gxx);
    git_init_add_commit_log => (no_setup, || vec![bash(GIT_SCRIPT)], check_git);
    tar_gzip_roundtrip => (make_tree_and_data, || vec![bash(TAR_SCRIPT)]);
    xz_compress_decompress => (make_data, || vec![bash(XZ_SCRIPT)]);
    bzip2_and_file_magic => (make_tree_and_data, || vec![bash(BZIP2_FILE_SCRIPT)]);
    find_sort_uniq_pipelines => (make_tree_and_data, || vec![bash(FIND_SCRIPT)]);
    coreutils_assorted => (make_tree_and_data, || vec![bash(COREUTILS_SCRIPT)]);
    make_small_project => (write_make_project, || vec![bash(MAKE_SCRIPT)], check_make);
    dlopen_dlclose_same_address => (no_setup, dl_reuse_cmds, check_dl_reuse);
    ld_so_run_directly => (no_setup, ld_so_cmds);
    ld_library_path_reaches_guest => (make_fake_lib_dir, ld_library_path_cmds);
    ld_preload_reaches_guest => (no_setup, ld_preload_cmds, check_preload);
    shebang_scripts_run_directly => (write_scripts, shebang_cmds);
    proc_self_exe_and_argv0 => (no_setup, selfexe_cmds);
    proc_comm_cmdline_and_exe_of_other_processes => (no_setup, proc_other_cmds);
    cpuid_xgetbv_passthrough => (no_setup, cpuid_cmds);
    posix_spawn_missing_program => (make_bad_programs, spawn_cmds);
    java_javac_jit_threads_exceptions => (write_java_program, || vec![bash(JAVA_SCRIPT)], check_java);
    node_jit_workers_signals => (write_node_program, || vec![bash("node main.js")], check_node);
}

fn workload(name: &str) -> Workload {
    match workloads().into_iter().find(|w| w.name == name) {
        Some(w) => w,
        None => panic!("no workload named {name}"),
    }
}

fn run_workload(name: &str) {
    let w = workload(name);
    let natives: Vec<Outcome> = (w.cmds)().iter().map(|cmd| compare_in_dirs(cmd, w.setup)).collect();
    (w.check_native)(&natives);
}

fn bash(script: &str) -> Cmd {
    Cmd::new(&[BASH, "-c", script]).timeout(LONG)
}

fn python(script: &str) -> Cmd {
    Cmd::new(&[PYTHON, "-c", script]).timeout(LONG)
}

fn lib_dir() -> String {
    format!("{GUEST_DIR}/lib")
}

fn guest_lib(name: &str) -> String {
    let p = format!("{}/{name}", lib_dir());
    assert!(Path::new(&p).is_file(), "shared library {p} was not built (see testsuite/build.rs)");
    p
}

fn stdout_has(o: &Outcome, what: &str, needle: &str) {
    assert!(
        o.stdout_str().contains(needle),
        "the native run of the {what} workload does not print {needle:?}, so the test would not check what it \
         claims to; native stdout:\n{}",
        o.stdout_str()
    );
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

fn chmod(p: &Path, mode: u32) {
    if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)) {
        panic!("chmod {}: {e}", p.display());
    }
}

fn mkdir(p: &Path) {
    if let Err(e) = std::fs::create_dir_all(p) {
        panic!("mkdir {}: {e}", p.display());
    }
}

/// A file tree under `tree/` with fixed modes and times, a symlink, a hard
/// link, an empty directory and names with spaces and non-ASCII bytes.
fn make_tree(dir: &Path) {
    write_file(dir, "tree/a.txt", "hello, tree\n");
    write_file(dir, "tree/b/c.txt", pseudo_random_text(3, 300));
    write_file(dir, "tree/b/d/e.bin", pseudo_random_bytes(4, 10_000));
    write_file(dir, "tree/b/d/f.txt", "");
    write_file(dir, "tree/b/d/g.c", "int main(void) { return 0; }\n");
    write_file(dir, "tree/big.txt", pseudo_random_text(5, 3000));
    write_file(dir, "tree/with space.txt", "spaced\n");
    write_file(dir, "tree/caf\u{e9}.md", "# caf\u{e9}\n");
    write_file(dir, "tree/script.sh", "#!/bin/sh\necho script\n");
    mkdir(&dir.join("tree/empty"));
    if let Err(e) = symlink("a.txt", dir.join("tree/link")) {
        panic!("symlink: {e}");
    }
    if let Err(e) = std::fs::hard_link(dir.join("tree/a.txt"), dir.join("tree/b/hard.txt")) {
        panic!("hard link: {e}");
    }
    for (p, m) in [
        ("tree", 0o755),
        ("tree/a.txt", 0o644),
        ("tree/b", 0o750),
        ("tree/b/c.txt", 0o600),
        ("tree/b/d", 0o755),
        ("tree/b/d/e.bin", 0o444),
        ("tree/b/d/f.txt", 0o664),
        ("tree/b/d/g.c", 0o640),
        ("tree/big.txt", 0o644),
        ("tree/with space.txt", 0o644),
        ("tree/caf\u{e9}.md", 0o644),
        ("tree/script.sh", 0o755),
        ("tree/empty", 0o700),
    ] {
        chmod(&dir.join(p), m);
    }
    set_mtimes(dir, FIXED_TIME);
}

/// `text` (20k lines), `big` (4 MiB of random bytes), `small` (200 lines).
fn make_data(dir: &Path) {
    write_file(dir, "text", pseudo_random_text(11, 20_000));
    write_file(dir, "big", pseudo_random_bytes(12, 4 << 20));
    write_file(dir, "small", pseudo_random_text(13, 200));
    set_mtimes(dir, FIXED_TIME);
}

fn make_tree_and_data(dir: &Path) {
    make_tree(dir);
    make_data(dir);
}

/// `notexec` (a script without execute permission) and `garbage` (executable,
/// but neither ELF nor `#!`).
fn make_bad_programs(dir: &Path) {
    write_file(dir, "notexec", "#!/bin/sh\necho should not run\n");
    chmod(&dir.join("notexec"), 0o644);
    write_file(dir, "garbage", pseudo_random_bytes(21, 300));
    chmod(&dir.join("garbage"), 0o755);
    set_mtimes(dir, FIXED_TIME);
}

// ---------------------------------------------------------------------------
// ls
// ---------------------------------------------------------------------------

fn ls_cmds() -> Vec<Cmd> {
    vec![
        Cmd::new(&["/bin/ls", "-la", "tree", "tree/b"]),
        Cmd::new(&["/bin/ls", "-laR", "--time-style=full-iso", "tree"]),
        Cmd::new(&["/bin/ls", "-lhS", "--color=always", "tree"]),
        Cmd::new(&["/bin/ls", "-1sF", "--group-directories-first", "tree", "tree/b/d"]),
        Cmd::new(&["/bin/ls", "-la", "tree/missing", "tree/a.txt"]).expect(Status::Exited(2)),
    ]
}

// ---------------------------------------------------------------------------
// bash
// ---------------------------------------------------------------------------

const BASH_SCRIPT: &str = r##"
set -u
shopt -s extglob
fib() { local n=$1; if (( n < 2 )); then echo "$n"; else echo $(( $(fib $((n - 1))) + $(fib $((n - 2))) )); fi; }
echo "fib(14) = $(fib 14)"
declare -a primes=()
for (( i = 2; ${#primes[@]} < 30; i++ )); do
    is=1
    for p in "${primes[@]}"; do (( p * p > i )) && break; (( i % p == 0 )) && { is=0; break; }; done
    (( is )) && primes+=("$i")
done
echo "primes: ${primes[*]}"
echo "count ${#primes[@]}, slice ${primes[*]:5:3}, last ${primes[-1]}"
declare -A colour=([apple]=red [banana]=yellow [cherry]=red [lime]=green)
for k in $(printf '%s\n' "${!colour[@]}" | sort); do printf '%-8s %s\n' "$k" "${colour[$k]}"; done
unset 'colour[banana]'; echo "keys left: ${#colour[@]}"
mapfile -t lines < <(seq 1 20 | awk '{ print $1 * $1 }')
echo "mapfile: ${#lines[@]} lines, 7th ${lines[6]}"
sum=0; while read -r n; do (( sum += n )); done < <(printf '%s\n' "${lines[@]}"); echo "sum of squares $sum"
words="the quick brown fox jumps over the lazy dog the end"
read -r -a arr <<< "$words"
echo "${#arr[@]} words; upper ${words^^}; title ${arr[1]^}; replaced ${words//the/THE}"
top=$(tr ' ' '\n' <<< "$words" | sort | uniq -c | sort -k1,1nr -k2 | head -n 3 | tr -s ' ')
echo "top: $top"
if [[ "build-2023-07-42.tar.gz" =~ ^([a-z]+)-([0-9]{4})-([0-9]+)-([0-9]+)\.(.*)$ ]]; then echo "re: ${BASH_REMATCH[*]}"; fi
f="archive.tar.gz"; echo "${f%%.*} ${f#*.} ${f%.gz} ${#f} ${f:2:5} ${f/tar/TAR}"
case "$f" in *.@(gz|xz)) echo compressed;; *) echo plain;; esac
printf -v padded '%08.3f|%-5s|%5x' 3.14159 ab 255; echo "$padded"
echo {1..5} {a..e} x{A,B}y {10..1..3}
nested=$(echo "outer $(echo "inner $(echo deepest)")"); echo "$nested"
out=$( { echo to-stdout; echo to-stderr >&2; } 2>&1 | sort ); echo "$out" | tr '\n' ' '; echo
seq 1 10000 | grep 7 | wc -l
seq 1 100 | paste -sd+ | { read -r e; echo "sum 1..100 = $(( e ))"; }
true | false | true; echo "PIPESTATUS ${PIPESTATUS[*]}"
setref() { local -n ref=$1; ref=changed; }; v=orig; setref v; echo "nameref: $v"
trap 'echo "ERR trapped at status $?"' ERR; false; trap - ERR
coproc UPPER { tr a-z A-Z; }
echo "coproc text" >&"${UPPER[1]}"; exec {UPPER[1]}>&-
read -r line <&"${UPPER[0]}"; wait "$UPPER_PID"; echo "coproc: $line"
(exit 4) || echo "subshell failed with $?"
declare -p primes | cut -c1-40
x=5; (( x **= 3, x %= 7 )); echo "arith $x $(( 0x1f | 0b101 )) $(( 7 / 2 )) $(( -7 % 3 )) $(( 1 << 62 ))"
for d in /bin /usr /nonexistent; do [[ -d $d ]] && echo "$d is a dir" || echo "$d missing"; done
IFS=: read -r u _ uid _ < <(grep '^root:' /etc/passwd); echo "user $u uid $uid"
printf '%s\n' "${arr[@]}" | sort -u | tr '\n' ',' ; echo
echo "bash major version ${BASH_VERSINFO[0]}"
"##;

fn bash_status_cmds() -> Vec<Cmd> {
    let script = r##"
for c in 0 1 2 42 127 255 256; do /bin/sh -c "exit $c"; echo "exit $c -> $?"; done
/bin/sh -c 'exit -1'; echo "exit -1 -> $?"
true | (exit 3); echo "pipeline ending in exit 3 -> $?"
(exit 3) | true; echo "exit 3 then true -> $?"
set -o pipefail; (exit 3) | cat | true; echo "pipefail -> $?"; set +o pipefail
/bin/sh -c 'exit 5' | /bin/sh -c 'exit 6' | /bin/sh -c 'exit 7'; echo "PIPESTATUS ${PIPESTATUS[*]}"
/nonexistent/prog; echo "missing -> $?"
./notexec; echo "not executable -> $?"
./garbage; echo "not a program -> $?"
if ! /bin/false; then echo "false negated"; fi
/bin/cat /nonexistent-file; echo "cat -> $?"
seq 1 1000000 | head -n 1; echo "SIGPIPE'd producer: ${PIPESTATUS[*]}"
/bin/sh -c 'echo from sh; exit 9' | (read -r l; echo "read: $l"; exit 3)
"##;
    vec![
        Cmd::new(&[BASH, "-c", script]).expect(Status::Exited(3)),
        Cmd::new(&[BASH, "-c", "echo before; kill -TERM $$; echo after"]).expect(Status::signal(libc::SIGTERM)),
        Cmd::new(&[BASH, "-c", "exit 3 | cat; exit 3"]).expect(Status::Exited(3)),
    ]
}

/// Children killed by signals; bash reports them on stderr with their pid,
/// which the outer pipeline replaces by `PID`.
const SIGNAL_SCRIPT: &str = r##"
/bin/sh -c 'kill -TERM $$'; echo "TERM -> $?"
/bin/sh -c 'kill -SEGV $$'; echo "SEGV -> $?"
/bin/sh -c 'kill -ABRT $$'; echo "ABRT -> $?"
/bin/sleep 10 & pid=$!; kill -KILL $pid; wait $pid; echo "KILL -> $?"
/bin/sleep 10 & pid=$!; kill -USR1 $pid; wait $pid; echo "USR1 -> $?"
trap 'echo "got USR2"' USR2
/bin/sh -c 'kill -USR2 $PPID; sleep 0.1'; echo "after USR2 -> $?"
/usr/bin/python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGHUP)'; echo "python HUP -> $?"
/usr/bin/perl -e 'kill "QUIT", $$; sleep 1'; echo "perl QUIT -> $?"
bash -c 'kill -TERM $$'; echo "nested bash TERM -> $?"
kill -TERM $$
echo "not reached"
"##;

fn setup_signal_script(dir: &Path) {
    write_file(dir, "sig.sh", SIGNAL_SCRIPT);
}

fn bash_signal_cmds() -> Vec<Cmd> {
    vec![
        Cmd::new(&[
            BASH,
            "-c",
            r#"bash sig.sh 2>&1 | sed -E 's/line ([0-9]+): +[0-9]+ /line \1: PID /'; exit ${PIPESTATUS[0]}"#,
        ])
        .expect(Status::Exited(143)),
        Cmd::new(&[BASH, "-c", "kill -TERM $$"]).expect(Status::signal(libc::SIGTERM)),
        Cmd::new(&[BASH, "-c", "/bin/sh -c 'kill -KILL $$'"]).expect(Status::signal(libc::SIGKILL)),
    ]
}

// ---------------------------------------------------------------------------
// python3
// ---------------------------------------------------------------------------

const PY_COMPUTE: &str = r##"
import math, fractions, decimal
def primes(n):
    sieve = bytearray([1]) * (n + 1)
    sieve[0:2] = b"\0\0"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytes(len(range(i * i, n + 1, i)))
    return [i for i, v in enumerate(sieve) if v]
p = primes(300000)
print(len(p), p[-5:], sum(p))
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(fib(23))
x = 0
for i in range(1, 300000):
    x += (i * i) % 7 - (i ^ (i >> 3)) % 5
print(x)
print(2 ** 521 - 1, math.factorial(50))
print(sum(1.0 / k ** 2 for k in range(1, 200000)), math.pi ** 2 / 6)
print(repr(0.1 + 0.2), 1e300 * 1e10, -0.0, float("nan") != float("nan"), round(2.675, 2), f"{math.e:.15g}")
print(math.sin(1e22), math.log1p(1e-10), math.gamma(4.5), math.hypot(3, 4, 12), 7.0 // 2, -7 % 3, divmod(-7, 2))
d = {}
for i in range(100000):
    d[i % 1000] = d.get(i % 1000, 0) + i
print(len(d), d[999], sorted(d.items(), key=lambda kv: -kv[1])[:3])
s = "".join(chr(97 + (i * 7) % 26) for i in range(10000))
print(s.count("hov"), s[:40], s.find("zgn"), s.upper()[-10:])
class V:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x, self.y = x, y
    def __add__(self, o):
        return V(self.x + o.x, self.y + o.y)
acc = V(0, 0)
for i in range(50000):
    acc = acc + V(i, -i)
print(acc.x, acc.y)
print(sum(fractions.Fraction(1, k) for k in range(1, 30)))
decimal.getcontext().prec = 50
print(decimal.Decimal(2).sqrt(), decimal.Decimal("1.1") * 3)
print(sorted(range(20), key=lambda v: (v % 3, -v)))
print([n for n in range(2, 60) if all(n % d for d in range(2, n))][-5:], list(map(hex, (255, 4096, -1))))
gen = (i * i for i in range(10 ** 6) if i % 3 == 0)
print(sum(gen), max(range(10 ** 5), key=lambda v: (v * 7919) % 10007))
"##;

const PY_STDLIB: &str = r##"
import json, re, hashlib, zlib, base64, struct, bz2, lzma, binascii, collections, itertools, datetime
import random, statistics, textwrap, csv, io, heapq, bisect, unicodedata, sqlite3
data = {"name": "bt-run", "values": [1, 2.5, None, True, "x\u00e9"], "nested": {"k": list(range(10))}}
s = json.dumps(data, sort_keys=True)
print(s)
print(json.dumps(json.loads(s), indent=1, ensure_ascii=False)[:120])
try:
    json.loads('{"a": [1, 2,]}')
except json.JSONDecodeError as e:
    print("JSONDecodeError:", e)
text = "\n".join(f"line {i}: user{i % 7}@example.com value={i * i}" for i in range(2000))
print(collections.Counter(re.findall(r"user(\d)@example\.com", text)).most_common(3))
print(re.sub(r"value=(\d+)", lambda m: f"v={int(m.group(1)) % 97}", text[:200]))
print(re.split(r"[:=@]", "a:b=c@d"), bool(re.fullmatch(r"(?i)[a-z]+\d*", "Hello42")))
print([m.span() for m in re.finditer(r"\b\w{5}\b", "these words are short, others longer")])
blob = text.encode()
for name in ("md5", "sha1", "sha256", "sha512", "sha3_256", "blake2b"):
    print(name, hashlib.new(name, blob).hexdigest())
print(hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 2000).hex())
c = zlib.compress(blob, 9)
print(len(c), zlib.crc32(blob), zlib.adler32(blob), zlib.decompress(c) == blob)
co = zlib.compressobj(6, zlib.DEFLATED, -15)
raw = co.compress(blob) + co.flush()
print(len(raw), zlib.decompress(raw, -15) == blob)
print(len(bz2.compress(blob)), len(lzma.compress(blob)), lzma.decompress(lzma.compress(blob)) == blob)
print(base64.b64encode(hashlib.md5(blob).digest()).decode(), binascii.hexlify(struct.pack("<iqd", -5, 2 ** 40, 1.5)).decode())
rnd = random.Random(42)
xs = [rnd.random() for _ in range(1000)]
print(round(statistics.mean(xs), 12), round(statistics.stdev(xs), 12), rnd.randint(1, 10 ** 9))
print(datetime.datetime.fromtimestamp(1600000000, datetime.timezone.utc).isoformat(), datetime.date(2024, 2, 29) + datetime.timedelta(days=365))
print(list(itertools.islice(itertools.permutations("abcd"), 5)), heapq.nsmallest(3, [5, 1, 4, 2]), bisect.bisect([1, 3, 5], 4))
db = sqlite3.connect(":memory:")
db.execute("create table t(a, b)")
db.executemany("insert into t values (?, ?)", [(i, i * i) for i in range(1000)])
print(db.execute("select count(*), sum(b), max(a) from t where a % 3 = 0").fetchone())
out = io.StringIO()
csv.writer(out).writerows([["a", "b,c"], [1, 'q"x']])
print(repr(out.getvalue()))
print(unicodedata.name("\u00e9"), "stra\u00dfe".upper(), textwrap.fill("word " * 20, 40))
"##;

const PY_SUBPROCESS: &str = r##"
import subprocess, sys, os
r = subprocess.run([sys.executable, "-c", "import sys; print('child', sys.argv[1:]); sys.exit(3)", "a", "b c"], capture_output=True, text=True)
print(r.returncode, repr(r.stdout), repr(r.stderr))
r = subprocess.run(["/bin/sh", "-c", "echo from sh; echo err >&2; exit 5"], capture_output=True)
print(r)
r = subprocess.run(["tr", "a-z", "A-Z"], input=b"hello via stdin\n", stdout=subprocess.PIPE)
print(r.stdout, r.returncode)
r = subprocess.run("seq 1 1000 | sort -r | head -n 3", shell=True, capture_output=True, text=True)
print(r.stdout.split())
r = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"])
print("killed child:", r.returncode)
print(subprocess.check_output(["/bin/echo", "check_output"]))
try:
    subprocess.check_call(["/bin/false"])
except subprocess.CalledProcessError as e:
    print("CalledProcessError", e.returncode)
for prog in (["/nonexistent/program-bt"], ["no-such-program-bt"], ["./notexec"], ["./garbage"]):
    try:
        subprocess.run(prog)
        print(prog, "ran?!")
    except OSError as e:
        print(prog, type(e).__name__, e.errno, e.strerror)
p = subprocess.Popen([sys.executable, "-c", "import sys\nfor l in sys.stdin: print(l.strip()[::-1])"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
out, _ = p.communicate("abc\ndef\n")
print(repr(out), p.returncode)
procs = [subprocess.Popen([sys.executable, "-c", f"print({i} * {i})"], stdout=subprocess.PIPE) for i in range(4)]
print([int(p.communicate()[0]) for p in procs])
print(subprocess.run(["/bin/sh", "-c", "echo $FOO"], env={"FOO": "bar"}, capture_output=True).stdout)
print(subprocess.run(["pwd"], cwd="/", capture_output=True).stdout)
print(subprocess.run(["/bin/sh", "-c", "exit 7"], close_fds=False).returncode)
print(os.system("echo via os.system; exit 2") >> 8)
with os.popen("echo via popen") as f:
    print(f.read().strip())
"##;

const PY_FORK: &str = r##"
import os, sys, signal
r, w = os.pipe()
pids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        total = sum(k * k for k in range(i * 10000))
        os.write(w, f"{i}:{total}\n".encode())
        os._exit(10 + i)
    pids.append(pid)
os.close(w)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
data = b""
while chunk := os.read(r, 4096):
    data += chunk
print(sorted(data.decode().split()), codes, flush=True)
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGKILL)
_, st = os.waitpid(pid, 0)
print("signaled", os.WIFSIGNALED(st), os.WTERMSIG(st), flush=True)
pid = os.fork()
if pid == 0:
    signal.pause()
    os._exit(0)
os.kill(pid, signal.SIGUSR1)
_, st = os.waitpid(pid, 0)
print("usr1", os.WTERMSIG(st), flush=True)
pid = os.fork()
if pid == 0:
    p2 = os.fork()
    if p2 == 0:
        os._exit(7)
    _, s2 = os.waitpid(p2, 0)
    os._exit(os.WEXITSTATUS(s2) * 2)
print("grandchild", os.WEXITSTATUS(os.waitpid(pid, 0)[1]), flush=True)
value = [1]
pid = os.fork()
if pid == 0:
    value[0] = 99
    os._exit(value[0])
print("after fork", value, os.WEXITSTATUS(os.waitpid(pid, 0)[1]), flush=True)
parent = os.getpid()
pid = os.fork()
if pid == 0:
    print("child: parent pid matches", os.getppid() == parent, "own pid differs", os.getpid() != parent, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent prints", flush=True)
pid = os.fork()
if pid == 0:
    os.execv("/bin/echo", ["echo", "exec'd", "from", "forked", "child"])
print("exec'd child status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
rfd, wfd = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(wfd, 1)
    os.execvp("sort", ["sort", "-r", "/etc/passwd", "/dev/null"])
os.close(wfd)
print("sorted via child:", len(os.read(rfd, 1000)) > 0, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"##;

const PY_MULTIPROCESSING: &str = r##"
import multiprocessing as mp
def square(v):
    return v * v
def digest(i):
    import hashlib
    return hashlib.sha256(str(i).encode() * 1000).hexdigest()[:12]
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        print(pool.map(square, range(20)))
        print(pool.map(digest, range(6)))
        print(sorted(pool.imap_unordered(square, range(10))))
    q = ctx.Queue()
    procs = [ctx.Process(target=lambda i=i: q.put((i, square(i)))) for i in range(3)]
    for p in procs:
        p.start()
    got = sorted(q.get() for _ in procs)
    for p in procs:
        p.join()
    print(got, [p.exitcode for p in procs])
    p = ctx.Process(target=lambda: exit(5))
    p.start(); p.join(); print("exitcode", p.exitcode)
"##;

const PY_THREADS: &str = r##"
import threading, queue, concurrent.futures, hashlib, time
lock = threading.Lock()
counter = 0
def work(n):
    global counter
    for _ in range(n):
        with lock:
            counter += 1
ts = [threading.Thread(target=work, args=(20000,)) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("counter", counter)
q = queue.Queue()
def producer():
    for i in range(2000):
        q.put(i)
    q.put(None)
results = []
def consumer():
    while (item := q.get()) is not None:
        results.append(item * 2)
tp, tc = threading.Thread(target=producer), threading.Thread(target=consumer)
tp.start(); tc.start(); tp.join(); tc.join()
print("queue", len(results), sum(results))
def h(i):
    return hashlib.sha256(str(i).encode() * 200000).hexdigest()[:16]
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(list(ex.map(h, range(8))))
cond = threading.Condition()
state = []
def waiter(i):
    with cond:
        cond.wait_for(lambda: state)
        state.append(i)
ws = [threading.Thread(target=waiter, args=(i,)) for i in range(3)]
for t in ws: t.start()
time.sleep(0.05)
with cond:
    state.append("go")
    cond.notify_all()
for t in ws: t.join()
print("condition", state[0], sorted(state[1:]))
local = threading.local()
def tl(i, out):
    local.v = i
    time.sleep(0.01)
    out.append(local.v == i)
out = []
tls = [threading.Thread(target=tl, args=(i, out)) for i in range(5)]
for t in tls: t.start()
for t in tls: t.join()
print("thread-local ok", all(out), len(out), "alive", threading.active_count())
"##;

fn python_executable_cmds() -> Vec<Cmd> {
    let script = "import sys, os; print(sys.executable); print(sys.argv); print(sys.orig_argv); \
                  print(os.readlink('/proc/self/exe')); print(os.path.realpath('/proc/self/exe')); \
                  print(sys.prefix, sys.base_prefix, sys.platlibdir); print(sys.path[1:])";
    vec![
        // Found through $PATH: argv[0] is the bare name, sys.executable must still be absolute.
        Cmd::new(&["python3", "-c", script]),
        Cmd::new(&[PYTHON, "-c", script]),
        Cmd::new(&[BASH, "-c", "exec -a fancy-name /usr/bin/python3 -c \"$0\"", script]),
    ]
}

// ---------------------------------------------------------------------------
// perl
// ---------------------------------------------------------------------------

const PERL_SCRIPT: &str = r##"
use strict; use warnings;
use List::Util qw(sum max min first reduce);
use Digest::MD5 qw(md5_hex);
use POSIX qw(floor ceil strftime);
my @words = map { (qw(alpha beta gamma delta epsilon))[$_ % 5] . ($_ * 7 % 13) } 0..999;
my %count; $count{$_}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} or $a cmp $b } keys %count)[0..9];
printf "%-10s %3d\n", $_, $count{$_} for @top;
my $text = join "\n", map { "id=$_ name=user$_ mail=u$_\@ex.org score=" . ($_ * 37 % 101) } 1..500;
my @hi = $text =~ /^id=(\d+) .* score=(9\d)$/mg;
print scalar(@hi) / 2, " high scores, first @hi[0..3]\n";
(my $t2 = $text) =~ s/user(\d+)/"U" . ($1 * 2)/ge;
print substr($t2, 0, 80), "\n";
my %h = map { $_ => length } qw(apple banana kiwi cherry);
print join(",", map { "$_=$h{$_}" } sort keys %h), "\n";
my @sorted = sort { $a->[1] <=> $b->[1] || $a->[0] cmp $b->[0] } map { [$_, length $_] } qw(pear fig banana kiwi apple date);
print join(" ", map { $_->[0] } @sorted), "\n";
my @nums = sort { $a <=> $b } map { ($_ * 7919) % 1000 } 1..100;
print "@nums[0..9] ... $nums[-1]\n";
print join("|", split /\s*,\s*/, "a , b,c ,  d"), "\n";
(my $r = reverse "Hello World") =~ tr/a-zA-Z/n-za-mN-ZA-M/; print "$r\n";
printf "%.10f %e %x %o %b %s\n", atan2(1, 1) * 4, 12345.678, 255, 8, 10, "x" x 5;
print unpack("H*", pack("NnC", 0xdeadbeef, 0x1234, 7)), "\n";
my %hoh; $hoh{$_ % 3}{$_ % 5}++ for 1..100;
for my $k (sort keys %hoh) { print "$k: ", join(",", map { "$_=$hoh{$k}{$_}" } sort keys %{$hoh{$k}}), "\n" }
{ local $_ = "aaa bbb ccc ddd"; my $n = () = /\w+/g; print "$n matches\n"; }
my @fib = (0, 1); push @fib, $fib[-1] + $fib[-2] while @fib < 60; print "$fib[-1]\n";
print sum(1..1000), " ", max(3, 9, 2), " ", (reduce { $a * $b } 1..15), " ", (first { $_ > 3 } 1..10), "\n";
print md5_hex($text), "\n";
print strftime("%Y-%m-%d %H:%M:%S", gmtime(1600000000)), " ", floor(-2.5), " ", ceil(2.1), "\n";
my $closure = do { my $c = 0; sub { return ++$c } }; $closure->() for 1..4; print "closure ", $closure->(), "\n";
my $s = "The year 1999 and 2024 and 42"; my @y = $s =~ /(?<!\d)(\d{4})(?!\d)/g; print "years @y\n";
my $out = `echo from backticks`; print "backticks: $out";
system("/bin/sh", "-c", "exit 3"); print "system: ", $? >> 8, "\n";
open(my $fh, "-|", "/usr/bin/seq", "1", "5") or die "seq: $!"; my @l = <$fh>; close $fh; chomp @l; print "pipe: @l\n";
my $pid = fork(); if ($pid == 0) { exit 6 } waitpid($pid, 0); print "fork child exit: ", $? >> 8, "\n";
print "sprintf vector: ", sprintf("%vd", "1.22.333"), "\n";
eval { die { code => 42 } }; print "died with code $@->{code}\n";
local $@; eval { my $x = 1 / 0; }; print "error: ", ($@ =~ /division by zero/ ? "division by zero" : $@), "\n";
"##;

// ---------------------------------------------------------------------------
// gcc, g++, make
// ---------------------------------------------------------------------------

const MAIN_C: &str = r##"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "util.h"

static int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    int v[64];
    for (int i = 0; i < 64; i++) v[i] = (i * 7919 + n) % 101;
    qsort(v, 64, sizeof v[0], cmp_desc);
    printf("sorted head: %d %d %d, tail: %d\n", v[0], v[1], v[2], v[63]);
    printf("gcd(%d, 462) = %d, fib(%d) = %ld\n", n * 42, gcd(n * 42, 462), n + 20, fib(n + 20));
    printf("sqrt(2) = %.15f, sin(1) = %.15f, pow(n, 0.5) = %.6f\n", sqrt(2.0), sin(1.0), pow(n, 0.5));
    char buf[64];
    strcpy(buf, "translated compile");
    reverse(buf);
    printf("reversed: %s (%zu chars)\n", buf, strlen(buf));
    printf("checksum: %08x\n", checksum((const unsigned char *)argv[0], 0) ^ checksum((const unsigned char *)"abc", 3));
    return n % 5;
}
"##;

const UTIL_H: &str = "int gcd(int a, int b);\nlong fib(int n);\nvoid reverse(char *s);\n\
                      unsigned checksum(const unsigned char *p, unsigned len);\n";

const UTIL_C: &str = r##"#include <string.h>
#include "util.h"

int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

long fib(int n) {
    long a = 0, b = 1;
    while (n-- > 0) { long t = a + b; a = b; b = t; }
    return a;
}

void reverse(char *s) {
    for (size_t i = 0, j = strlen(s); i + 1 < j; i++, j--) { char t = s[i]; s[i] = s[j - 1]; s[j - 1] = t; }
}

unsigned checksum(const unsigned char *p, unsigned len) {
    unsigned h = 2166136261u;
    for (unsigned i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}
"##;

fn write_c_project(dir: &Path) {
    write_file(dir, "main.c", MAIN_C);
    write_file(dir, "util.c", UTIL_C);
    write_file(dir, "util.h", UTIL_H);
    write_file(dir, "broken.c", "int main(void) { return undeclared_variable; }\n");
    set_mtimes(dir, FIXED_TIME);
}

/// The whole driver/cc1/as/collect2/ld chain, then the program it produced;
/// the objects and executables must be byte-identical to the native build's.
const GCC_SCRIPT: &str = r##"
set -e
gcc -O2 -Wall -c util.c -o util.o
ar rcs libutil.a util.o
gcc -O2 -Wall -o prog main.c -L. -lutil -lm
gcc -O0 -S -o main.s main.c
echo "main.s: $(wc -l < main.s) lines, $(grep -c call main.s) calls"
md5sum util.o libutil.a prog main.s
set +e
./prog 12; echo "prog 12 -> $?"
./prog; echo "prog -> $?"
gcc -O2 -static -o prog-static main.c util.c -lm && ./prog-static 7; echo "static prog 7 -> $?"
md5sum prog-static
gcc -fPIC -shared -o libutil.so util.c && gcc -o prog-shared main.c -L. -lutil -lm -Wl,-rpath,'$ORIGIN' && ./prog-shared 3
echo "shared prog 3 -> $?"
gcc -c broken.c -o broken.o; echo "broken.c -> $?"
echo 'int main(void){return 0;}' | gcc -x c - -o from-stdin && ./from-stdin && echo "compiled from stdin"
gcc -dumpversion; gcc -print-multiarch
"##;

fn check_gcc(natives: &[Outcome]) {
    stdout_has(&natives[0], "gcc", "prog 12 -> 2");
    stdout_has(&natives[0], "gcc", "static prog 7 -> 2");
    stdout_has(&natives[0], "gcc", "compiled from stdin");
}

const MAIN_CPP: &str = r##"#include <algorithm>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

struct ParseError : std::runtime_error {
    int line;
    ParseError(const std::string &m, int l) : std::runtime_error(m), line(l) {}
};

static int parse(const std::string &s, int line) {
    if (s.empty()) throw ParseError("empty input", line);
    size_t pos = 0;
    int v = std::stoi(s, &pos);
    if (pos != s.size()) throw std::invalid_argument("trailing characters in '" + s + "'");
    return v;
}

struct Tracker {
    std::string n;
    explicit Tracker(std::string name) : n(std::move(name)) { std::cout << "  ctor " << n << "\n"; }
    ~Tracker() { std::cout << "  dtor " << n << "\n"; }
};

static void deep(int n) {
    Tracker t("level" + std::to_string(n));
    if (n == 0) throw std::out_of_range("bottom reached");
    deep(n - 1);
}

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual std::string name() const = 0;
};
struct Circle : Shape {
    double r;
    explicit Circle(double r) : r(r) {}
    double area() const override { return 3.14159265358979 * r * r; }
    std::string name() const override { return "circle"; }
};
struct Rect : Shape {
    double w, h;
    Rect(double w, double h) : w(w), h(h) {}
    double area() const override { return w * h; }
    std::string name() const override { return "rect"; }
};

int main(int argc, char **argv) {
    if (argc > 1 && std::string(argv[1]) == "die") {
        std::cout << "about to throw an uncaught exception" << std::endl;
        throw std::runtime_error("nobody catches this");
    }
    std::vector<std::string> inputs = {"12", "", "7x", "40", "99999999999", "-3"};
    int sum = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        try {
            sum += parse(inputs[i], static_cast<int>(i));
        } catch (const ParseError &e) {
            std::cout << "ParseError: " << e.what() << " at " << e.line << "\n";
        } catch (const std::invalid_argument &e) {
            std::cout << "invalid_argument: " << e.what() << "\n";
        } catch (const std::out_of_range &e) {
            std::cout << "out_of_range: " << e.what() << "\n";
        }
    }
    std::cout << "sum " << sum << "\n";
    try { deep(3); } catch (const std::exception &e) { std::cout << "caught: " << e.what() << "\n"; }
    try { std::vector<int> v(3); v.at(10) = 1; } catch (const std::out_of_range &e) { std::cout << "at(): " << e.what() << "\n"; }
    try { throw 42; } catch (int x) { std::cout << "int " << x << "\n"; }
    try {
        try { throw std::runtime_error("inner"); } catch (...) { std::throw_with_nested(std::logic_error("outer")); }
    } catch (const std::logic_error &e) {
        std::cout << "nested: " << e.what();
        try { std::rethrow_if_nested(e); } catch (const std::runtime_error &in) { std::cout << " <- " << in.what() << "\n"; }
    }
    std::exception_ptr ep;
    try { throw std::string("stored"); } catch (...) { ep = std::current_exception(); }
    try { std::rethrow_exception(ep); } catch (const std::string &s) { std::cout << "rethrown " << s << "\n"; }

    std::map<std::string, int> freq;
    std::istringstream text("the cat and the hat and the bat sat on the mat");
    for (std::string w; text >> w;) freq[w]++;
    for (const auto &[k, v] : freq) std::cout << k << "=" << v << " ";
    std::cout << "\n";
    std::vector<int> v(1000);
    std::iota(v.begin(), v.end(), 0);
    std::mt19937 rng(42);
    std::shuffle(v.begin(), v.end(), rng);
    std::cout << "shuffled head " << v[0] << " " << v[1] << " " << v[2] << "\n";
    std::sort(v.begin(), v.end(), std::greater<>());
    std::cout << "sorted head " << v[0] << ", sum " << std::accumulate(v.begin(), v.end(), 0L)
              << ", lower_bound(500) at " << (std::lower_bound(v.rbegin(), v.rend(), 500) - v.rbegin()) << "\n";
    std::unordered_map<int, std::string> um;
    for (int i = 0; i < 100; i++) um[i * i % 37] += char('a' + i % 26);
    std::set<std::pair<int, std::string>> ordered(um.begin(), um.end());
    std::cout << "unordered_map " << um.size() << " entries, first " << ordered.begin()->second << "\n";
    std::vector<std::unique_ptr<Shape>> shapes;
    shapes.push_back(std::make_unique<Circle>(1.5));
    shapes.push_back(std::make_unique<Rect>(2, 3.5));
    shapes.push_back(std::make_unique<Circle>(0.5));
    std::sort(shapes.begin(), shapes.end(), [](const auto &a, const auto &b) { return a->area() < b->area(); });
    for (const auto &s : shapes) std::cout << std::fixed << std::setprecision(4) << s->name() << " " << s->area() << "\n";
    auto shared = std::make_shared<std::vector<int>>(5, 7);
    std::weak_ptr<std::vector<int>> weak = shared;
    std::cout << "use_count " << shared.use_count() << ", expired " << weak.expired() << "\n";
    std::function<long(int)> fact = [&](int n) -> long { return n <= 1 ? 1 : n * fact(n - 1); };
    std::cout << "20! = " << fact(20) << "\n";
    std::optional<int> maybe;
    std::cout << "optional " << maybe.value_or(-1) << "\n";
    std::variant<int, double, std::string> var = std::string("variant string");
    std::visit([](const auto &x) { std::cout << "visit " << x << "\n"; }, var);
    std::regex re(R"((\w+)@(\w+)\.com)");
    std::string mails = "alice@example.com, bob@test.com; carol@corp.com";
    for (std::sregex_iterator it(mails.begin(), mails.end(), re), end; it != end; ++it)
        std::cout << "user " << (*it)[1] << " at " << (*it)[2] << "\n";
    std::mutex m;
    long total = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&, t] {
            long local = 0;
            for (int i = 0; i < 100000; i++) local += (i * (t + 1)) % 7;
            std::lock_guard<std::mutex> g(m);
            total += local;
        });
    for (auto &t : threads) t.join();
    std::cout << "threads total " << total << "\n";
    return 0;
}
"##;

fn write_cxx_program(dir: &Path) {
    write_file(dir, "main.cpp", MAIN_CPP);
    set_mtimes(dir, FIXED_TIME);
}

const GXX_SCRIPT: &str = r##"
set -e
g++ -O2 -std=c++17 -pthread -Wall -o prog main.cpp
md5sum prog
./prog
set +e
./prog die 2>&1 | cat; echo "uncaught exception -> ${PIPESTATUS[0]}"
"##;

fn check_gxx(natives: &[Outcome]) {
    stdout_has(&natives[0], "g++", "caught: bottom reached");
    stdout_has(&natives[0], "g++", "uncaught exception -> 134");
}

const MAKEFILE: &str = "CC = gcc\nCFLAGS = -O2 -Wall\nOBJS = main.o util.o\nVERSION := $(shell echo 1.2.3)\n\
.PHONY: all clean check\n\
all: prog\n\
prog: $(OBJS)\n\t$(CC) -o $@ $^ -lm\n\
%.o: %.c util.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\
check: prog\n\t./prog 7 || test $$? -eq 2\n\t@echo \"version $(VERSION), $(words $(OBJS)) objects, sources $(sort $(wildcard *.c))\"\n\
clean:\n\trm -f prog $(OBJS)\n";

fn write_make_project(dir: &Path) {
    write_c_project(dir);
    write_file(dir, "Makefile", MAKEFILE);
    set_mtimes(dir, FIXED_TIME);
}

const MAKE_SCRIPT: &str = r##"
make
make check
make -q; echo "up to date -> $?"
touch util.c; make; echo "rebuilt util only -> $?"
touch util.h; make -n
make clean
make -j2 all > build.log 2>&1; echo "parallel build -> $?"; sort build.log
make -s check
make no-such-target; echo "missing target -> $?"
make --no-print-directory -C . -f Makefile VERSION=9 check | tail -n 1
"##;

fn check_make(natives: &[Outcome]) {
    stdout_has(&natives[0], "make", "parallel build -> 0");
    stdout_has(&natives[0], "make", "version 1.2.3, 2 objects");
}

// ---------------------------------------------------------------------------
// git, tar, xz, bzip2, file, find, coreutils
// ---------------------------------------------------------------------------

const GIT_SCRIPT: &str = r##"
set -e
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_EDITOR=true GIT_PAGER=cat
export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
export GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL=committer@example.com
export GIT_AUTHOR_DATE="2020-09-13T12:26:40Z" GIT_COMMITTER_DATE="2020-09-13T12:26:40Z"
git() { /usr/bin/git "$@"; }
git init -q -b main repo
cd repo
printf 'line %s\n' $(seq 1 50) > a.txt
mkdir -p src && echo 'int main(void) { return 0; }' > src/main.c
git add . && git commit -q -m "initial commit"
sed -i 's/line 7$/line seven/' a.txt; echo new > b.txt
git add -A && git commit -q -m "second: edit and add"
git checkout -q -b feature
echo feature >> b.txt && git commit -q -am "feature work"
git checkout -q main
echo other > c.txt && git add c.txt && git commit -q -m "main work"
git merge -q --no-edit feature
git tag -a v1 -m "release 1"
git log --graph --oneline --decorate --all
git log --stat --format='%H %an <%ae> %ad %cn %s' --date=iso-strict
git show --stat --format=fuller HEAD~1
git diff HEAD~3 HEAD -- a.txt
git rev-parse HEAD 'HEAD^{tree}' v1 main~2
git ls-files -s
git cat-file -p HEAD
git cat-file -p v1
echo change >> a.txt
git status --short
git stash -q && git stash list && git stash pop -q && git diff --stat
git checkout -q -- a.txt
git archive --format=tar HEAD | md5sum
git repack -a -d -q && git count-objects -v | grep -E '^(count|in-pack|packs):'
git fsck --strict && echo "fsck ok"
git log --format=%h | wc -l
git blame -s --date=short a.txt | sed -n '5,9p'
git grep -n seven
git branch -a
"##;

fn check_git(natives: &[Outcome]) {
    stdout_has(&natives[0], "git", "fsck ok");
    stdout_has(&natives[0], "git", "Merge branch 'feature'");
}

const TAR_SCRIPT: &str = r##"
set -e
opts="--sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner"
tar $opts -czf t.tgz tree
md5sum t.tgz
tar -tzvf t.tgz
mkdir out && tar -xzf t.tgz -C out
diff -r tree out/tree && echo "extracted tree is identical"
ls -l out/tree | tail -n +2
tar $opts -cf - tree | gzip -9 -n > t2.tar.gz
gzip -l t2.tar.gz; gzip -t t2.tar.gz && echo "gzip -t ok"
zcat t2.tar.gz | tar -tf - | sort | md5sum
gzip -c big > big.gz; gzip -dc big.gz | cmp - big && echo "big round trip ok"; md5sum big.gz
gzip -k text; gunzip -c text.gz | md5sum; md5sum text
tar $opts --use-compress-program='gzip -1' -cf t3.tgz tree text && tar -tzf t3.tgz | wc -l
set +e
tar -xzf /nonexistent.tgz 2>/dev/null; echo "missing archive -> $?"
echo garbage | gzip -dc; echo "not gzip -> $?"
"##;

const XZ_SCRIPT: &str = r##"
set -e
xz -c -6 text > text.xz
md5sum text.xz
xz -l text.xz
xz -t text.xz && echo "xz -t ok"
xz -dc text.xz | cmp - text && echo "text round trip ok"
xz -T2 -1 -c big > big.xz
md5sum big.xz
xz -lv big.xz | grep -E '^ +(Streams|Blocks|Compressed size|Uncompressed size):'
xz -T2 -dc big.xz | md5sum; md5sum big
xz --format=lzma -c small | md5sum
xz -k -e -3 small && xzcat small.xz | md5sum && ls small small.xz
tar --sort=name --mtime=@1600000000 --owner=0 --group=0 -cJf t.txz small text && tar -tJvf t.txz
set +e
echo garbage | xz -dc; echo "not xz -> $?"
head -c 100 text.xz | xz -dc > /dev/null; echo "truncated -> $?"
"##;

const BZIP2_FILE_SCRIPT: &str = r##"
set -e
bzip2 -9 -c text > text.bz2; md5sum text.bz2
bzip2 -dc text.bz2 | cmp - text && echo "bzip2 round trip ok"
bzip2 -t text.bz2 && echo "bzip2 -t ok"
bzcat text.bz2 | tail -n 2
gzip -c -n small > small.gz; xz -c small > small.xz
file tree/* tree/b/d/* text.bz2 small.gz small.xz big
file -b --mime /bin/ls /bin/sh tree/script.sh tree/a.txt
file -L tree/link
"##;

const FIND_SCRIPT: &str = r##"
find tree -type f | sed 's/.*\.//' | sort | uniq -c | sort -k1,1nr -k2
find tree -printf '%y %m %s %n %p -> %l\n' | sort
find tree -type f -print0 | sort -z | xargs -0 md5sum
find tree -name '*.txt' -newer tree/a.txt | sort
find tree -type f -size +1k -exec wc -c {} + | sort -n
find tree -type d -empty; find tree -perm -u+x -type f; find tree -links 2 -type f | sort
tr -s ' ' '\n' < text | sort | uniq -c | sort -k1,1nr -k2 | head -n 20
sort --parallel=2 -S 1M text | md5sum
sort -u -t ' ' -k2,2 text | wc -l
awk '{ print $NF % 10 }' text | sort -n | uniq -c
cut -d ' ' -f 1 text | sort | uniq -d | wc -l
grep -c charlie text; grep -o 'x86-64 [0-9]*' text | sort -t ' ' -k2,2n | tail -n 3
"##;

const COREUTILS_SCRIPT: &str = r##"
date -u -d @1600000000 '+%Y-%m-%d %H:%M:%S %A %j'; date -u -d '2024-02-29 12:00 +1 day' +%F
factor 1234567890123 600851475143 2147483647
numfmt --to=iec 123456789 1024 1048576; numfmt --from=si 1.5M
stat -c '%n %s %a %F %h' tree/a.txt tree/b tree/link tree/empty 'tree/with space.txt'
du -s --apparent-size --block-size=1 tree/b/d
sha256sum text big; sha1sum small; b2sum small; cksum text
od -A x -t x1z -N 48 big; base64 -w 60 small | head -n 3
nl -ba small | tail -n 3; tac small | head -n 2; fold -w 30 small | head -n 4
paste -d: <(cut -d ' ' -f 1 small) <(cut -d ' ' -f 2 small) | head -n 3
join <(sort small | cut -d ' ' -f1 | sort -u) <(printf 'alpha 1\nzulu 2\n') 
comm -12 <(sort -u small) <(sort -u text) | wc -l
seq -f '%.3f' 0 0.25 1 | tr '\n' ' '; echo
printf '%s %5.2f %#o %e\n' word 3.14159 8 123456
expr 6 \* 7; expr substr translator 3 5; echo $(( $(printf '%d' 0x7f) ))
env -i A=1 B=2 /usr/bin/env | sort
timeout 10 /bin/true; echo "timeout -> $?"
timeout -s KILL 0.2 /bin/sleep 5 | cat; echo "timed out -> ${PIPESTATUS[0]}"
id -u; id -un; uname -s -m; getconf PAGESIZE; nproc --all | grep -c .
realpath --relative-to=. tree/link; readlink tree/link; basename "$PWD/tree/a.txt" .txt; dirname tree/b/d/e.bin
split -l 7000 text part. && wc -l part.* && cat part.* | cmp - text && echo "split ok"
shuf -i 1-10 --random-source=big | tr '\n' ' '; echo
truncate -s 1M sparse && stat -c '%s' sparse && dd if=big of=copy bs=64K count=3 status=none && md5sum copy
"##;

// ---------------------------------------------------------------------------
// The dynamic loader: dlopen, ld.so, LD_LIBRARY_PATH, LD_PRELOAD
// ---------------------------------------------------------------------------

fn dl_reuse_cmds() -> Vec<Cmd> {
    vec![Cmd::new(&[&guest("dl_reuse", "dyn"), &guest_lib("libdl_a.so"), &guest_lib("libdl_b.so"), "6"])]
}

fn check_dl_reuse(natives: &[Outcome]) {
    let out = natives[0].stdout_str();
    stdout_has(&natives[0], "dlopen", "lib B: compute(7)=142");
    // B must land exactly where A was, or the test would not catch a stale translation.
    assert!(
        !out.contains("same function address: no") && out.matches("same function address: yes").count() == 6,
        "natively, lib B was not loaded at lib A's address, so the test proves nothing:\n{out}"
    );
}

fn ld_so_cmds() -> Vec<Cmd> {
    let needed = guest("dl_needed", "dyn");
    let selfexe = guest("dl_selfexe", "dyn");
    let lib = lib_dir();
    vec![
        Cmd::new(&[LD_SO, "/bin/echo", "hi"]),
        Cmd::new(&[LD_SO, "--library-path", &lib, &needed]),
        Cmd::new(&[LD_SO, "--argv0", "custom-argv0", &selfexe]),
        Cmd::new(&[LD_SO, "--preload", &guest_lib("libpreload_hello.so"), "/bin/true"]),
        Cmd::new(&[LD_SO, PYTHON, "-c", "import sys; print(sys.argv, sys.version_info[0])"]),
        Cmd::new(&[LD_SO, "/bin/bash", "-c", "/bin/echo child of a bash started by ld.so; exit 4"])
            .expect(Status::Exited(4)),
        Cmd::new(&[LD_SO, "--verify", "/bin/ls"]),
        Cmd::new(&[LD_SO, "--help"]),
        Cmd::new(&[LD_SO, "--list-tunables"]),
        Cmd::new(&[LD_SO, &needed]).expect(Status::Exited(127)),
        Cmd::new(&[LD_SO]).expect(Status::Exited(1)),
        Cmd::new(&[LD_SO, "/nonexistent/program"]).expect(Status::Exited(127)),
    ]
}

/// `fakelib/` holds a broken `libgcc_s.so.1`: a program that does not need
/// libgcc_s (like /bin/echo) runs natively with `LD_LIBRARY_PATH=fakelib`.
/// The variable is meant for the guest's loader, not for bt-run's own.
fn make_fake_lib_dir(dir: &Path) {
    write_file(dir, "fakelib/libgcc_s.so.1", "not a shared library\n");
    set_mtimes(dir, FIXED_TIME);
}

fn ld_library_path_cmds() -> Vec<Cmd> {
    let needed = guest("dl_needed", "dyn");
    vec![
        Cmd::new(&[&needed]).env("LD_LIBRARY_PATH", lib_dir()),
        Cmd::new(&[&needed]).env("LD_LIBRARY_PATH", format!("/nonexistent:{}", lib_dir())),
        // Without it the loader cannot find libdldep.so.
        Cmd::new(&[&needed]).expect(Status::Exited(127)),
        // Inherited by children of a translated shell.
        Cmd::new(&[BASH, "-c", "\"$0\"; echo status $?", &needed]).env("LD_LIBRARY_PATH", lib_dir()),
        Cmd::new(&["/bin/echo", "does not need libgcc_s"]).env("LD_LIBRARY_PATH", "fakelib"),
    ]
}

fn ld_preload_cmds() -> Vec<Cmd> {
    let preload = guest_lib("libpreload_hello.so");
    let needed = guest("dl_needed", "dyn");
    vec![
        Cmd::new(&["/bin/echo", "hi"]).env("LD_PRELOAD", &preload),
        // rand() interposed by the preloaded library.
        Cmd::new(&[&needed]).env("LD_PRELOAD", &preload).env("LD_LIBRARY_PATH", lib_dir()),
        // Reaches every child of a translated shell.
        Cmd::new(&[BASH, "-c", "/bin/echo one; /bin/true | /bin/cat; exit 2"])
            .env("LD_PRELOAD", &preload)
            .expect(Status::Exited(2)),
        // A preload that cannot be found: the loader's warning, the program still runs.
        Cmd::new(&["/bin/echo", "still runs"]).env("LD_PRELOAD", "/nonexistent/libnothing.so"),
    ]
}

fn check_preload(natives: &[Outcome]) {
    stdout_has(&natives[0], "LD_PRELOAD", "[preload] constructor in /usr/bin/echo");
    stdout_has(&natives[1], "LD_PRELOAD", "rand() = 4242");
}

// ---------------------------------------------------------------------------
// Scripts run directly, /proc/self, CPUID, posix_spawn
// ---------------------------------------------------------------------------

fn write_scripts(dir: &Path) {
    let scripts: &[(&str, &str)] = &[
        (
            "script.sh",
            "#!/bin/bash\n\
             echo \"\\$0=$0 \\$#=$# args:\"; for a in \"$@\"; do echo \"  [$a]\"; done\n\
             echo \"interpreter: $BASH\"\n\
             greet() { echo \"hello from $FUNCNAME in ${BASH_SOURCE[0]}\"; }; greet\n\
             ./py.py one 'two words'\n\
             ./pl.pl; echo \"perl -> $?\"\n\
             ./strict.sh; echo \"strict -> $?\"\n\
             ./nested.sh via-nested; echo \"nested -> $?\"\n\
             exit 3\n",
        ),
        (
            "py.py",
            "#!/usr/bin/env python3\nimport sys, os\nprint('python', sys.argv, os.path.basename(sys.executable))\n",
        ),
        (
            "pl.pl",
            "#!/usr/bin/perl -w\nmy @a = (1..5); print \"perl $0 sum \", eval { my $s = 0; $s += $_ for @a; $s }, \"\\n\"; exit 4;\n",
        ),
        ("strict.sh", "#!/bin/sh -eu\necho strict start\nfalse\necho not reached\n"),
        // The interpreter of nested.sh is itself a script (the kernel allows a few levels).
        ("interp.sh", "#!/bin/sh\necho \"interp.sh got: $*\"\nexit 5\n"),
        ("nested.sh", "#!./interp.sh extra-arg\necho never printed\n"),
    ];
    for (name, body) in scripts {
        write_file(dir, name, body);
        chmod(&dir.join(name), 0o755);
    }
    set_mtimes(dir, FIXED_TIME);
}

fn shebang_cmds() -> Vec<Cmd> {
    vec![
        Cmd::new(&["./script.sh", "first arg", "", "third"]).expect(Status::Exited(3)),
        Cmd::new(&["./py.py", "direct"]),
        Cmd::new(&["./nested.sh", "x"]).expect(Status::Exited(5)),
    ]
}

fn selfexe_cmds() -> Vec<Cmd> {
    let selfexe = guest("dl_selfexe", "dyn");
    vec![
        Cmd::new(&[&selfexe, "a", "b"]),
        Cmd::new(&[BASH, "-c", "exec -a renamed-by-exec \"$0\"", &selfexe]),
        Cmd::new(&["/usr/bin/readlink", "/proc/self/exe"]),
        Cmd::new(&[BASH, "-c", "/usr/bin/readlink /proc/self/exe; echo $BASH"]),
    ]
}

/// What /proc shows about a translated process beyond its own
/// /proc/self/exe: its comm and cmdline, and its exe link as another
/// (translated) process sees it.
fn proc_other_cmds() -> Vec<Cmd> {
    let selfexe = guest("dl_selfexe", "dyn");
    vec![
        Cmd::new(&[&selfexe, "--proc"]),
        Cmd::new(&[BASH, "-c", "readlink /proc/$$/exe; /bin/sh -c 'readlink /proc/$$/exe'"]),
        Cmd::new(&["/bin/cat", "/proc/self/comm"]),
        Cmd::new(&[BASH, "-c", "tr '\\0' ' ' < /proc/$$/cmdline; echo; cat /proc/$$/comm"]),
    ]
}

fn cpuid_cmds() -> Vec<Cmd> {
    ["gcc", "musl", "pie", "dyn"].iter().map(|v| Cmd::new(&[guest("cpu_id", v)])).collect()
}

const SPAWN_PY: &str = r##"
import os, errno
cases = [
    (os.posix_spawn, "/nonexistent/program-bt"),
    (os.posix_spawnp, "no-such-program-bt"),
    (os.posix_spawn, "./notexec"),
    (os.posix_spawn, "./garbage"),
    (os.posix_spawn, "/etc"),
]
for fn, path in cases:
    try:
        pid = fn(path, [path], os.environ)
        print(fn.__name__, path, "spawned; child status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    except OSError as e:
        print(fn.__name__, path, "->", type(e).__name__, errno.errorcode[e.errno], e.strerror)
pid = os.posix_spawn("/bin/sh", ["sh", "-c", "echo spawned sh; exit 9"], os.environ)
print("sh status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
pid = os.posix_spawnp("echo", ["echo", "spawnp found echo"], os.environ)
print("echo status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"##;

fn spawn_cmds() -> Vec<Cmd> {
    vec![
        Cmd::new(&[PYTHON, "-c", SPAWN_PY]),
        Cmd::new(&[
            PERL,
            "-e",
            "for my $p ('/nonexistent/prog', './notexec', './garbage') { my $r = system($p); \
             print \"$p: system returned $r, errno '$!'\\n\"; }",
        ]),
        Cmd::new(&[BASH, "-c", "/nonexistent/prog; echo $?; exec /nonexistent/prog"]).expect(Status::Exited(127)),
    ]
}

// ---------------------------------------------------------------------------
// Children stay translated: one statistics record per translated process image
// ---------------------------------------------------------------------------

/// `--stats=json -o FILE` makes every bt-run append one JSON record to FILE
/// when its process image ends (exit, or execve into a new bt-run). With
/// execve followed, every program the shell execs runs under a new bt-run and
/// appends its own record; with `--no-follow` only the first image is translated.
#[test]
fn children_stay_translated() {
    let dir = TempDir::new("children_stay_translated");
    // bash execs sh, which execs echo: three process images, no fork.
    let chain = "exec /bin/sh -c 'exec /bin/echo hi'";
    // Forks too: bash, the forked bash that execs sh, sh, sh's fork that execs
    // echo, and the final true (bash execs its last command).
    let forks = "/bin/sh -c '/bin/echo forked; /bin/true'; /bin/true";
    for (name, script, follow_min) in [("chain", chain, 3), ("forks", forks, 5)] {
        let native = run_native(&Cmd::new(&[BASH, "-c", script]));
        for follow in [true, false] {
            let stats = dir.join(format!("{name}-{follow}.json"));
            let stats_s = stats.to_string_lossy().into_owned();
            let mut args = vec!["--stats=json", "-o", stats_s.as_str()];
            if !follow {
                args.push("--no-follow");
            }
            args.extend([BASH, "-c", script]);
            let bt = run_bt_args(&args, Duration::from_secs(120));
            assert_eq!(bt.status, Status::Exited(0), "bt-run {args:?} failed:\n{}", bt.stderr_str());
            assert_eq!(bt.stdout, native.stdout, "bt-run {args:?}: stdout differs from native");
            let text = std::fs::read_to_string(&stats).unwrap_or_else(|e| panic!("no stats file {stats_s}: {e}"));
            let records: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            for r in &records {
                assert!(
                    r.starts_with('{') && r.ends_with('}') && r.contains("\"blocks_translated\":"),
                    "not a JSON stats record: {r}"
                );
            }
            if follow {
                assert!(
                    records.len() >= follow_min,
                    "{name}: expected at least {follow_min} stats records (one per translated process image), \
                     got {}:\n{text}",
                    records.len()
                );
            } else if name == "chain" {
                assert_eq!(records.len(), 1, "{name} with --no-follow: only bash is translated:\n{text}");
            } else {
                // bash and its fork (until the fork execs sh natively).
                assert_eq!(records.len(), 2, "{name} with --no-follow: only bash and its fork are translated:\n{text}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Timing of the whole corpus (bench/corpus.sh)
// ---------------------------------------------------------------------------

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs every workload natively and under bt-run `BT_CORPUS_ROUNDS` times
/// (default 3, interleaved) and prints the median wall time of each and of
/// the whole corpus. Outputs are not compared here (the tests do that), but
/// a run that fails or times out is reported.
#[test]
#[ignore = "timing, not a test: run by bench/corpus.sh"]
fn corpus_timing() {
    let rounds: usize = std::env::var("BT_CORPUS_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let filter = std::env::var("BT_CORPUS_FILTER").unwrap_or_default();
    let ws: Vec<Workload> = workloads().into_iter().filter(|w| w.name.contains(filter.as_str())).collect();
    let mut native_tot = Vec::new();
    let mut bt_tot = Vec::new();
    let mut per: Vec<(Vec<Duration>, Vec<Duration>)> = ws.iter().map(|_| (Vec::new(), Vec::new())).collect();
    let mut problems = Vec::new();
    for round in 0..rounds {
        let (mut nt, mut bt) = (Duration::ZERO, Duration::ZERO);
        for (w, slot) in ws.iter().zip(per.iter_mut()) {
            let (mut n, mut b) = (Duration::ZERO, Duration::ZERO);
            for cmd in (w.cmds)() {
                let nd = TempDir::new(&format!("{}-native", w.name));
                (w.setup)(nd.path());
                let no = run_native(&cmd.clone().cwd(nd.path()));
                let bd = TempDir::new(&format!("{}-bt", w.name));
                (w.setup)(bd.path());
                let bo = run_bt(&cmd.clone().cwd(bd.path()), LONG);
                if round == 0 && (bo.timed_out || bo.status != no.status || bo.stdout != no.stdout) {
                    problems.push(format!(
                        "{}: `{}` differs (native {}, bt-run {})",
                        w.name,
                        cmd.display(),
                        no.status,
                        bo.status
                    ));
                }
                n += no.elapsed;
                b += bo.elapsed;
            }
            slot.0.push(n);
            slot.1.push(b);
            nt += n;
            bt += b;
        }
        eprintln!("round {}: native {:.3} s, bt-run {:.3} s", round + 1, nt.as_secs_f64(), bt.as_secs_f64());
        native_tot.push(nt);
        bt_tot.push(bt);
    }
    println!("\n| workload | native (s) | bt-run (s) | ratio |\n| --- | ---: | ---: | ---: |");
    for (w, (n, b)) in ws.iter().zip(per) {
        let (n, b) = (median(n).as_secs_f64(), median(b).as_secs_f64());
        println!("| {} | {n:.3} | {b:.3} | {:.2} |", w.name, b / n.max(1e-9));
    }
    let (n, b) = (median(native_tot).as_secs_f64(), median(bt_tot).as_secs_f64());
    println!("| **total ({} workloads, median of {rounds})** | {n:.3} | {b:.3} | {:.2} |", ws.len(), b / n);
    if !problems.is_empty() {
        println!("\nruns whose bt-run outcome differed from native (see the tests):");
        for p in problems {
            println!("- {p}");
        }
    }
}

// ---------------------------------------------------------------------------
// A JVM: javac (itself Java) compiles a program that the JVM then runs with
// its JIT (code written into RWX memory, patched while other threads run),
// implicit null checks and a division by zero turned into exceptions by its
// SIGSEGV/SIGFPE handlers, a thread pool, and the garbage collector.
// ---------------------------------------------------------------------------

fn write_java_program(dir: &Path) {
    write_file(dir, "Main.java", JAVA_MAIN);
}

const JAVA_SCRIPT: &str = r##"
set -e
javac -d out Main.java
md5sum out/Main.class
java -cp out Main
java -Xint -cp out Main | tail -2
"##;

fn check_java(natives: &[Outcome]) {
    stdout_has(&natives[0], "java", "npe caught 10000");
    stdout_has(&natives[0], "java", "div0 / by zero");
}

const JAVA_MAIN: &str = r##"import java.util.*;
import java.util.concurrent.*;
public class Main {
    static int npe(Object o) { return o.hashCode(); }
    public static void main(String[] a) throws Exception {
        long sum = 0;
        for (int i = 0; i < 2_000_000; i++) sum += (i * 31L) ^ (i >> 3);
        System.out.println("sum " + sum);
        int caught = 0;
        for (int i = 0; i < 20000; i++) { try { npe(i % 2 == 0 ? null : "x"); } catch (NullPointerException e) { caught++; } }
        System.out.println("npe caught " + caught);
        ExecutorService ex = Executors.newFixedThreadPool(4);
        List<Future<Long>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) { final int k = t; fs.add(ex.submit(() -> { long s = 0; for (int i = 0; i < 3_000_000; i++) s += i % (k + 3); return s; })); }
        long tot = 0;
        for (Future<Long> f : fs) tot += f.get();
        ex.shutdown();
        System.out.println("threads " + tot);
        Map<String, Integer> m = new TreeMap<>();
        for (int i = 0; i < 200000; i++) m.merge("k" + (i % 1000), 1, Integer::sum);
        System.out.println("map " + m.size() + " " + m.get("k7"));
        int[] arr = new int[10];
        try { arr[11] = 1; } catch (ArrayIndexOutOfBoundsException e) { System.out.println("aioobe"); }
        try { Object o = "s"; Integer x = (Integer) o; System.out.println(x); } catch (ClassCastException e) { System.out.println("cce"); }
        int zero = a.length;
        try { System.out.println(5 / zero); } catch (ArithmeticException e) { System.out.println("div0 " + e.getMessage()); }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 100000; i++) sb.append(i % 10);
        System.out.println("sb " + sb.length());
    }
}
"##;

// ---------------------------------------------------------------------------
// node: V8's JIT, worker threads, crypto/zlib, exceptions, timers, a signal.
// ---------------------------------------------------------------------------

fn write_node_program(dir: &Path) {
    write_file(dir, "main.js", NODE_MAIN);
}

fn check_node(natives: &[Outcome]) {
    stdout_has(&natives[0], "node", "got usr2");
    stdout_has(&natives[0], "node", "timer done");
}

const NODE_MAIN: &str = r##"const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
const zlib = require('zlib');
if (isMainThread) {
  const h = crypto.createHash('sha256').update('x'.repeat(100000)).digest('hex');
  const z = zlib.gzipSync(Buffer.from('hello '.repeat(1000))).length;
  let caught = 0;
  for (let i = 0; i < 1000; i++) { try { null.x; } catch (e) { caught++; } }
  const ws = [0, 1, 2].map(i => new Promise(r => { const w = new Worker(__filename, { workerData: i }); w.on('message', r); }));
  process.on('SIGUSR2', () => {
    console.log('got usr2');
    Promise.all(ws).then(v => { console.log(h.slice(0, 16), z, caught, v.join(',')); setTimeout(() => console.log('timer done'), 50); });
  });
  setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 10);
} else {
  let s = 0;
  for (let i = 0; i < 3e6; i++) s += i % (workerData + 2);
  parentPort.postMessage(s);
}
"##;
