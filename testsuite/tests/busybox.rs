//! Real programs: Debian's static busybox applets doing real work, each run
//! natively and under bt-run and compared (stdout, stderr, exit status).
//! Inputs are generated deterministically; file trees get fixed times.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use testsuite::*;

/// 2020-09-13T12:26:40Z
const FIXED_TIME: u64 = 1_600_000_000;

fn bb(args: &[&str]) -> Cmd {
    let mut v = vec![BUSYBOX];
    v.extend_from_slice(args);
    Cmd::new(&v)
}

fn chmod(p: &Path, mode: u32) {
    if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)) {
        panic!("chmod {}: {e}", p.display());
    }
}

/// A small file tree under `tree/` with fixed modes and times.
fn make_tree(dir: &Path) {
    write_file(dir, "tree/a.txt", "hello, tree\n");
    write_file(dir, "tree/b/c.txt", pseudo_random_text(3, 300));
    write_file(dir, "tree/b/d/e.bin", pseudo_random_bytes(4, 10_000));
    write_file(dir, "tree/b/d/f.txt", "");
    write_file(dir, "tree/big.txt", pseudo_random_text(5, 3000));
    write_file(dir, "tree/script.sh", "#!/bin/sh\necho script\n");
    if let Err(e) = std::fs::create_dir_all(dir.join("tree/empty")) {
        panic!("mkdir: {e}");
    }
    if let Err(e) = symlink("a.txt", dir.join("tree/link")) {
        panic!("symlink: {e}");
    }
    for (p, m) in [
        ("tree", 0o755),
        ("tree/a.txt", 0o644),
        ("tree/b", 0o750),
        ("tree/b/c.txt", 0o600),
        ("tree/b/d", 0o755),
        ("tree/b/d/e.bin", 0o444),
        ("tree/b/d/f.txt", 0o664),
        ("tree/big.txt", 0o644),
        ("tree/script.sh", 0o755),
        ("tree/empty", 0o700),
    ] {
        chmod(&dir.join(p), m);
    }
    set_mtimes(dir, FIXED_TIME);
}

/// `text` (20k lines of words and numbers), `big` (4 MiB of random bytes), `small` (200 lines).
fn make_data(dir: &Path) {
    write_file(dir, "text", pseudo_random_text(11, 20_000));
    write_file(dir, "big", pseudo_random_bytes(12, 4 << 20));
    write_file(dir, "small", pseudo_random_text(13, 200));
    set_mtimes(dir, FIXED_TIME);
}

#[test]
fn sh_loops_functions_arithmetic() {
    assert_same_sh(
        r#"
fact() { if [ "$1" -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }
collatz() { n=$1; steps=0; while [ "$n" -ne 1 ]; do
    if [ $((n % 2)) -eq 0 ]; then n=$((n / 2)); else n=$((3 * n + 1)); fi; steps=$((steps + 1)); done; echo $steps; }
i=0; sum=0
while [ $i -lt 3000 ]; do sum=$(( sum + i * i % 7 )); i=$((i + 1)); done
echo "sum=$sum"
for n in 1 5 10 15 20; do echo "fact $n = $(fact $n)"; done
for n in 27 97 871; do echo "collatz $n: $(collatz $n)"; done
s="Hello, translated world"
echo "${#s} [${s#Hello}] [${s%world}] [${s/translated/native}]"
case "$s" in *world) echo matched;; *) echo nope;; esac
echo $(( (1 << 40) / 3 ^ 0x55 )) $(( -17 % 5 )) $(( 2 ** 10 ))
printf '%05d|%-6s|%x|%o|%c\n' 42 ab 255 8 xyz
set -- one "two three" four; echo "$# args, second=[$2]"; shift; echo "now $1"
"#,
    );
}

#[test]
fn sh_pipelines_and_redirections() {
    let cmd = Cmd::sh(
        r#"
seq 1 3000 | grep 7 | sort -rn | head -n 20 | tr 0-9 a-j
seq 1 100 > nums; wc -l < nums; cat nums nums | sort -n | uniq -d | tail -n 3
{ echo out; echo err >&2; } 2>&1 | cat -n
cat <<EOF | sed 's/^/> /'
here-doc line $((6 * 7))
second line
EOF
( cd / && pwd ); echo "subshell status $?"
false | true; echo "pipeline status $?"
set -o pipefail; false | true; echo "pipefail status $?"; set +o pipefail
exec 3> fd3; echo "to fd 3" >&3; exec 3>&-; cat fd3
x=$(echo inner; echo second); echo "[$x]"
echo "$(seq 1 5 | tr '\n' +)0" | sed 's/+/ + /g'
"#,
    );
    compare_in_dirs(&cmd, |_| {});
}

#[test]
fn sh_exit_status() {
    compare(&Cmd::sh("echo before; exit 42").expect(Status::Exited(42)));
    compare(&Cmd::sh("(exit 3); echo $?; sh -c 'exit 7'; echo $?; false").expect(Status::Exited(1)));
}

#[test]
fn sh_killed_by_own_signal() {
    compare(&Cmd::sh("echo dying; kill -KILL $$; echo survived").expect(Status::signal(libc::SIGKILL)));
    compare(&Cmd::sh("echo dying; kill -TERM $$; echo survived").expect(Status::signal(libc::SIGTERM)));
    // An asynchronous SIGSEGV (sent with kill) must also end the guest, not bt-run's fault handling.
    compare(&Cmd::sh("kill -SEGV $$; echo survived").expect(Status::signal(libc::SIGSEGV)));
}

#[test]
fn sh_traps_and_background_jobs() {
    assert_same_sh(
        r#"
trap 'echo got USR1' USR1
trap 'echo exiting' EXIT
kill -USR1 $$
echo after signal
(sleep 0.1; echo background done) &
wait $!; echo "wait status $?"
sh -c 'exit 5' & wait $!; echo "bg exit $?"
sh -c 'kill -TERM $$' ; echo "child killed: $?"
"#,
    );
}

#[test]
fn awk_program() {
    let cmd = Cmd::sh(
        r##"
seq 1 30000 | awk '
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }
{ s += $1; sq += $1 * $1; m[$1 % 13]++; if ($1 % 1000 == 0) line = line sprintf("%x,", $1) }
END {
  printf "sum=%d sq=%.0f mean=%.6f NR=%d\n", s, sq, s / NR, NR
  for (k = 0; k < 13; k++) printf "%d:%d ", k, m[k]; print ""
  print substr(line, 1, 60); n = split(line, parts, ","); print n, parts[3]
  str = "The Quick Brown Fox"; g = gsub(/[aeiou]/, "#", str); print g, toupper(str), tolower(str), length(str)
  print fib(20); printf "%e %g %5.2f|%-8s|%c\n", 12345.678, 0.0001234, 3.14159, "ab", 65
  print index("translator", "late"), match("cache-block-42", /[0-9]+/), RSTART, RLENGTH
  printf "%.10f %.10f %.10f %.10f %.10f %.10f %d\n", sin(1), cos(1), atan2(1, 2), exp(1), log(10), sqrt(2), int(-3.7)
}'
awk '{ for (i = 1; i <= NF; i++) c[$i]++ } END { for (w in c) if (c[w] > 50) print c[w], w }' text | sort -k1,1nr -k2
awk -F' ' 'NF > 5 { n++; t += $NF } END { print n, t }' text
awk 'BEGIN { OFS = ":" } NR % 2000 == 1 { $1 = $1; print NR, $0 }' text
"##,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn sed_scripts() {
    let cmd = Cmd::sh(
        r#"
sed -e 's/\([a-z]*\) \([0-9]*\)$/\2 \1/' -e '/charlie/d' small | head -n 40
sed -n '/alpha/,/bravo/{=;p;}' small | head -n 30
sed '1!G;h;$!d' small | head -n 10
sed -E 's/(o+)/[\1]/g; s/a/A/2' small | tail -n 10
sed -n '$=' text
sed 'N;N;s/\n/ + /g' small | head -n 10
sed 'y/abcdefghij/0123456789/' small | md5sum
sed -n '10,20p; 25q' text
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn sort_variants() {
    let cmd = Cmd::sh(
        r#"
sort text | md5sum; sort text | head -n 5
sort -r text | head -n 3
awk '{ print $NF, $1 }' text | sort -n | tail -n 5
awk '{ print $NF, $1 }' text | sort -k1,1nr -k2 | head -n 5
sort -u text | wc -l
sort -t ' ' -k2,2 -k1,1r small | head -n 8
sort -s -k1,1 small | md5sum
seq 1 200000 | sort -r | md5sum
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn uniq_counts() {
    let cmd = Cmd::sh(
        r#"
sort text | uniq -c | sort -k1,1nr -k2 | head -n 15
uniq -d text | wc -l
sort text | uniq -u | wc -l
awk '{ print $1 }' text | sort | uniq -c
uniq -i -c small | head -n 5
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn hashes_of_generated_file() {
    let cmd = Cmd::sh("md5sum big text; sha1sum big; sha256sum big text; sha512sum big; sha3sum big; crc32 big");
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn hashes_of_pipeline() {
    assert_same_sh("seq 1 500000 | md5sum; seq 1 500000 | sha256sum; seq 1 3 500000 | sha1sum");
}

#[test]
fn gzip_roundtrip() {
    let cmd = Cmd::sh(
        r#"
gzip -c big > big.gz; gzip -c text > text.gz
md5sum big.gz text.gz; wc -c big.gz text.gz
gunzip -c big.gz | md5sum; md5sum big
gzip -9 -c text | wc -c; gzip -1 -c text | gunzip | cmp - text && echo round trip ok
gzip -t text.gz && echo integrity ok
zcat text.gz | tail -n 2
gzip text; ls text*; gunzip text.gz; md5sum text
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn bzip2_and_lzop_roundtrip() {
    let cmd = Cmd::sh(
        r#"
bzip2 -c text > text.bz2; md5sum text.bz2; bunzip2 -c text.bz2 | md5sum; md5sum text
bzcat text.bz2 | head -n 2
lzop -c small > small.lzo && lzop -d -c small.lzo | cmp - small && echo lzop ok
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

/// (busybox tar leaves the directories it fills and the symlinks it makes
/// with the time of extraction: they get the tree's fixed time before `ls`
/// shows them, or a minute that turns between the native run and bt-run's
/// would make them differ.)
#[test]
fn tar_create_list_extract() {
    let cmd = Cmd::sh(
        r#"
tar cf t.tar tree; md5sum t.tar
tar tvf t.tar
mkdir out && tar xf t.tar -C out && find out | sort
md5sum out/tree/b/c.txt out/tree/b/d/e.bin
touch -h -r tree/a.txt out out/tree out/tree/b out/tree/link
ls -la out/tree
tar czf t.tgz tree && tar tzf t.tgz | sort
tar cf - tree/b | tar tvf -
"#,
    );
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn cpio_roundtrip() {
    let cmd = Cmd::sh(
        r#"
find tree | sort | cpio -o -H newc > a.cpio
cpio -t < a.cpio
mkdir x && cd x && cpio -i -d < ../a.cpio && find . | sort && md5sum tree/b/d/e.bin
"#,
    );
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn find_tree() {
    let cmd = Cmd::sh(
        r#"
find tree | sort
find tree -type f -size +1k | sort
find tree -name '*.txt' | sort
find tree -type d | sort
find tree -maxdepth 1 | sort
find tree -empty | sort
find tree -perm 600
find tree -type l
find tree -type f -exec md5sum {} + | sort
find tree -type f -name '*.txt' -exec wc -l {} \; | sort
"#,
    );
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn ls_la_fixed_tree() {
    let cmd = Cmd::sh("ls -la tree tree/b; ls -laR tree; ls -lan tree/b/d; ls -1 tree; ls -s tree/big.txt");
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn stat_fixed_fields() {
    let cmd = bb(&["stat", "-c", "%n %s %a %A %F %Y %h %U", "tree/a.txt", "tree/b", "tree/link", "tree/empty"]);
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn expr_arithmetic_and_strings() {
    assert_same_sh(
        r#"
expr 7 \* 6; expr length "hello world"; expr substr translator 3 5; expr 100 / 7 % 3
expr "abc123" : '[a-z]*'; expr 5 \> 3; expr index translator l; expr 123456789 \* 987654321
expr 0 + 0; echo "status $?"
"#,
    );
}

#[test]
fn seq_and_printf() {
    assert_same_sh(
        r#"
seq 5; seq 3 3 20; seq -w 8 11; seq -s, 1 10; seq 10 -2 1
printf '%s=%d\n' a 1 b 2 c 3
printf '%8.3f|%-8.2e|%G\n' 3.14159265 12345.6789 0.000001
printf '%x %X %o %#x %u\n' 255 255 8 4096 4294967295
printf '[%5s][%-5s][%.2s]\n' ab cd efgh
printf 'esc: \t|\\|\101\n'
"#,
    );
}

#[test]
fn wc_counts() {
    let cmd = Cmd::sh("wc text; wc -l big; wc -c big; wc -w small; wc -L text; cat text | wc");
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn tr_and_cut() {
    let cmd = Cmd::sh(
        r#"
tr a-z A-Z < small | head -n 5
tr -d aeiou < small | tail -n 3
tr -s ' ' < small | md5sum
tr -c 'a-z\n' '_' < small | head -n 3
cut -d ' ' -f 1,3 small | head -n 10
cut -c 2-7 small | head -n 5
cut -d ' ' -f 2- -s text | md5sum
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn head_and_tail() {
    let cmd = Cmd::sh(
        "head -n 7 text; tail -n 7 text; head -c 100 big | md5sum; tail -c 5000 big | md5sum; \
         tail -n +19990 text; head -n -19995 text | tail -n 2",
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn od_hexdump_xxd() {
    let cmd = Cmd::sh(
        "od -A x -t x1 -N 256 big; od -c -N 64 text; od -t d4 -N 32 big; \
         hexdump -C -n 256 big; xxd -l 200 text; xxd -p -l 64 big",
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn base64_roundtrip() {
    let cmd = Cmd::sh(
        r#"
base64 small | head -n 5; base64 big | md5sum
base64 big | base64 -d | cmp - big && echo base64 ok
uuencode -m small small.txt | tail -n 3
uuencode small small.txt | uudecode -o - | cmp - small && echo uu ok
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn dd_blocks() {
    let cmd = Cmd::sh(
        r#"
dd if=big bs=4k count=10 2>/dev/null | md5sum
dd if=big bs=1000 skip=3 count=5 2>/dev/null | md5sum
dd if=big of=part bs=512 count=7 2>err; head -n 2 err; md5sum part
dd if=text bs=1 count=20 skip=100 2>/dev/null; echo
dd if=small conv=ucase 2>/dev/null | head -n 2
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn grep_variants() {
    let cmd = Cmd::sh(
        r#"
grep -c alpha text; grep -n 'zulu [0-9]*$' small | head -n 5
grep -v -c a text; grep -i TRANSLATOR small | head -n 3
grep -E '^(alpha|bravo) [a-z]+ [0-9]+$' text | head -n 5
grep -o '[0-9][0-9][0-9][0-9][0-9]' small | sort -n | tail -n 3
grep -w -c lima text; grep -l alpha text small; grep -q nothing-here text; echo "q status $?"
grep -r -c hello tree 2>/dev/null | sort
"#,
    );
    compare_in_dirs(&cmd, |d| {
        make_data(d);
        make_tree(d);
    });
}

#[test]
fn xargs_batches() {
    let cmd = Cmd::sh(
        r#"
seq 1 100 | xargs -n 7 echo
seq 1 1000 | xargs echo | wc -c
find tree -type f | sort | xargs wc -c
printf 'a b\nc d\n' | xargs -n 1 printf '<%s>\n'
"#,
    );
    compare_in_dirs(&cmd, make_tree);
}

#[test]
fn factor_numbers() {
    assert_same(&[
        BUSYBOX,
        "factor",
        "1",
        "2",
        "97",
        "1001",
        "600851475143",
        "18446744073709551557",
        "18446744073709551615",
        "12345678901234567",
        "9999999967",
    ]);
}

#[test]
fn bc_calculations() {
    let prog = "scale=60; 4*a(1)\nl(10)\ne(1)\ns(1)\nsqrt(2)\nscale=0\n2^256\n\
                f=1; for (i = 1; i <= 40; i++) f *= i; f\n\
                define fib(n) { if (n < 2) return (n); return (fib(n-1) + fib(n-2)); }\nfib(18)\n\
                obase=16; 255*255*255\n";
    assert_same_with_stdin(&[BUSYBOX, "bc", "-l"], prog.as_bytes());
}

#[test]
fn dc_calculations() {
    assert_same_with_stdin(&[BUSYBOX, "dc"], b"2 100 ^ p\n20 k 2 v p\n1 2 + 3 * p\n16 o 65535 p\n");
}

#[test]
fn text_utilities() {
    let cmd = Cmd::sh(
        r#"
tac small | head -n 3; rev small | head -n 3; nl small | tail -n 3
paste -d , small small | head -n 2; fold -w 20 small | head -n 4
printf 'a\tb\tc\n' | expand -t 4; printf 'x       y\n' | unexpand -a
cmp small text; echo "cmp status $?"
diff small text > d.out; echo "diff status $?"; head -n 5 d.out
head -n 150 small > s2; sed -i 's/alpha/ALPHA/' s2; diff -u small s2 | tail -n +3 | head -n 20
strings -n 8 big | head -n 5
"#,
    );
    compare_in_dirs(&cmd, make_data);
}

#[test]
fn env_is_passed_unchanged() {
    assert_same(&[BUSYBOX, "env"]);
    compare(&Cmd::new(&[BUSYBOX, "env"]).env("BT_EXTRA", "with spaces and = signs").env("EMPTY", ""));
    assert_same(&[BUSYBOX, "env", "-i", "A=1", "B=2", BUSYBOX, "env"]);
}

#[test]
fn stdin_to_stdout() {
    let input = pseudo_random_bytes(21, 3 << 20);
    assert_same_with_stdin(&[BUSYBOX, "cat"], &input);
    assert_same_with_stdin(&[BUSYBOX, "md5sum"], &input);
    let text = pseudo_random_text(22, 50_000);
    assert_same_with_stdin(&[BUSYBOX, "wc"], text.as_bytes());
    assert_same_with_stdin(&[BUSYBOX, "sh", "-s"], b"for i in 1 2 3; do echo line $i; done; exit 0\n");
}

#[test]
fn yes_head_sigpipe() {
    assert_same_sh("yes translated | head -n 100000 | md5sum; yes | head -c 1000000 | wc -c");
}

#[test]
fn many_arguments() {
    let args: Vec<String> = (0..5000).map(|i| format!("arg-{i:04}")).collect();
    let mut argv: Vec<&str> = vec![BUSYBOX, "echo"];
    argv.extend(args.iter().map(String::as_str));
    assert_same(&argv);
    let mut argv: Vec<&str> = vec![BUSYBOX, "sh", "-c", "echo $# \"$1\" \"${4999}\"", "sh"];
    argv.extend(args.iter().map(String::as_str));
    assert_same(&argv);
}

#[test]
fn true_false_status() {
    assert_same(&[BUSYBOX, "true"]);
    assert_same_status(&[BUSYBOX, "false"], Status::Exited(1));
    assert_same_status(&[BUSYBOX, "no-such-applet"], Status::Exited(127));
    assert_same_status(&[BUSYBOX, "cat", "/nonexistent/file"], Status::Exited(1));
}
