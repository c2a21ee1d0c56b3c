//! Reading the dump a case writes to stdout, and describing how two dumps
//! differ, field by field.

use super::layout::*;
use super::state::InitState;

/// A named piece of the dump.
struct Field {
    name: String,
    off: u64,
    len: u64,
}

fn fields(vec_level: u8) -> Vec<Field> {
    let mut v = Vec::new();
    let mut f = |name: String, off: u64, len: u64| v.push(Field { name, off, len });
    for (i, n) in GPR_NAMES.iter().enumerate() {
        f(n.to_string(), OUT_GPR + 8 * i as u64, 8);
    }
    f("rflags".into(), OUT_FLAGS, 8);
    for (name, o, l) in [
        ("fcw", 0, 2),
        ("fsw", 2, 2),
        ("ftw(abridged)", 4, 1),
        ("fop", 6, 2),
        ("fip", 8, 8),
        ("fdp", 16, 8),
        ("mxcsr", 24, 4),
        ("mxcsr_mask", 28, 4),
    ] {
        f(name.into(), OUT_FX + o, l);
    }
    for i in 0..8 {
        f(format!("st{i}/mm{i} (physical order)"), OUT_FX + 32 + 16 * i, 10);
    }
    for i in 0..16 {
        f(format!("xmm{i}"), OUT_FX + 160 + 16 * i, 16);
    }
    match vec_level {
        0 => {}
        1 => (0..16).for_each(|i| f(format!("ymm{i}"), OUT_VEC + VEC_SLOT * i, 32)),
        _ => {
            (0..32).for_each(|i| f(format!("zmm{i}"), OUT_VEC + VEC_SLOT * i, 64));
            (0..8).for_each(|i| f(format!("k{i}"), OUT_K + 8 * i, 8));
        }
    }
    v
}

fn hex(b: &[u8]) -> String {
    // Little-endian number for <= 8 bytes, else bytes from the highest down.
    if b.len() <= 8 {
        let mut x = [0u8; 8];
        x[..b.len()].copy_from_slice(b);
        format!("{:#0w$x}", u64::from_le_bytes(x), w = 2 + 2 * b.len())
    } else {
        let s: Vec<String> = b
            .chunks(8)
            .rev()
            .map(|c| {
                let mut x = [0u8; 8];
                x[..c.len()].copy_from_slice(c);
                format!("{:0w$x}", u64::from_le_bytes(x), w = 2 * c.len())
            })
            .collect();
        format!("0x{}", s.join("_"))
    }
}

/// Names of the set flags among CF PF AF ZF SF DF OF.
pub fn flag_names(f: u64) -> String {
    let names = [(0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (10, "DF"), (11, "OF")];
    let set: Vec<&str> = names.iter().filter(|(b, _)| f >> b & 1 != 0).map(|(_, n)| *n).collect();
    if set.is_empty() { "-".into() } else { set.join(" ") }
}

fn region(off: u64) -> String {
    match off {
        o if o < SCRATCH_END => format!("scratch+{o:#x}"),
        o if o < STACK_HI => format!("stack+{:#x} (rsp0{:+#x})", o - STACK_LO, o as i64 - STACK_INIT as i64),
        o if (SIGCOPY..INIT_END).contains(&o) => format!("sigcopy+{:#x}", o - SIGCOPY),
        o if o < INIT_END => format!("init+{:#x}", o - INIT_GPR),
        o => format!("out+{:#x}", o - OUT_GPR),
    }
}

/// A field-by-field description of how `bt` differs from `native` (both
/// dumps of `DUMP_LEN` bytes when the program got that far).
pub fn diff(native: &[u8], bt: &[u8], vec_level: u8) -> Vec<String> {
    let mut out = Vec::new();
    if native.len() != bt.len() {
        out.push(format!("stdout length: native {} bytes, bt-run {} bytes", native.len(), bt.len()));
    }
    if native.len() != DUMP_LEN as usize || bt.len() != DUMP_LEN as usize {
        if let Some(i) = native.iter().zip(bt).position(|(a, b)| a != b) {
            out.push(format!("first differing stdout byte: {i:#x}"));
        }
        return out;
    }
    let mut covered = vec![false; DUMP_LEN as usize];
    for f in fields(vec_level) {
        let r = f.off as usize..(f.off + f.len) as usize;
        covered[r.clone()].iter_mut().for_each(|c| *c = true);
        let (a, b) = (&native[r.clone()], &bt[r]);
        if a != b {
            if f.name == "rflags" {
                let x = u64::from_le_bytes(a.try_into().unwrap_or([0; 8]));
                let y = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                out.push(format!("rflags: native {x:#x} [{}], bt-run {y:#x} [{}]", flag_names(x), flag_names(y)));
            } else {
                out.push(format!("{}: native {}, bt-run {}", f.name, hex(a), hex(b)));
            }
        }
    }
    // Memory: report differing 8-byte words, merged into ranges.
    let mut i = 0usize;
    let mut ranges = 0;
    while i < DUMP_LEN as usize {
        if covered[i] || native[i] == bt[i] {
            i += 1;
            continue;
        }
        let start = i & !7;
        let mut end = start + 8;
        while end < DUMP_LEN as usize && native[end..end + 8] != bt[end..end + 8] && !covered[end] {
            end += 8;
        }
        ranges += 1;
        if ranges <= 12 {
            let show = |d: &[u8]| {
                let w: Vec<String> = d[start..end.min(start + 32)]
                    .chunks(8)
                    .map(|c| format!("{:#018x}", u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))))
                    .collect();
                w.join(" ") + if end > start + 32 { " ..." } else { "" }
            };
            out.push(format!(
                "memory {} ({} bytes): native {}, bt-run {}",
                region(start as u64),
                end - start,
                show(native),
                show(bt)
            ));
        }
        i = end;
    }
    if ranges > 12 {
        out.push(format!("... and {} more differing memory ranges", ranges - 12));
    }
    out
}

/// One line with the initial register state, for reports.
pub fn describe_init(s: &InitState) -> String {
    let regs: Vec<String> = GPR_NAMES.iter().zip(s.gpr.iter()).map(|(n, v)| format!("{n}={v:#x}")).collect();
    format!("{} rflags={:#x} [{}] mxcsr={:#x} fcw={:#x}", regs.join(" "), s.flags, flag_names(s.flags), s.mxcsr, s.fcw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_fields_and_memory() {
        let a = vec![0u8; DUMP_LEN as usize];
        let mut b = a.clone();
        b[OUT_GPR as usize] = 1; // rax
        b[OUT_FLAGS as usize] = 0x41; // CF ZF
        b[0x10] = 9; // scratch
        let d = diff(&a, &b, 1);
        assert!(d[0].starts_with("rax: native 0x0000000000000000, bt-run 0x0000000000000001"), "{d:?}");
        assert!(d[1].contains("[CF ZF]"), "{d:?}");
        assert!(d[2].starts_with("memory scratch+0x10"), "{d:?}");
        assert_eq!(d.len(), 3);
    }
}
