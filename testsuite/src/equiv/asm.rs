//! A tiny two-pass assembler over iced-x86 `Instruction`s with labels, and a
//! builder that creates an `Instruction` from a dynamic operand list.
//!
//! Compiled into `tests/equivalence.rs` with `#[path]` (it needs iced-x86, a
//! dev-dependency); see `mod.rs`.

#![allow(dead_code)]

use iced_x86::{Code, Encoder, IcedError, Instruction, MemoryOperand, Register};

/// One operand, as the generators produce them.
#[derive(Clone, Copy, Debug)]
pub enum Opnd {
    R(Register),
    M(MemoryOperand),
    I(i64),
}

fn fits_i32(v: i64) -> bool {
    i32::try_from(v).is_ok()
}

/// `Instruction::withN(code, ...)` for a dynamic operand list.
pub fn build(code: Code, ops: &[Opnd]) -> Result<Instruction, String> {
    build_iced(code, ops)?.map_err(|e| e.to_string())
}

fn build_iced(code: Code, ops: &[Opnd]) -> Result<Result<Instruction, IcedError>, String> {
    use Opnd::{I, M, R};
    type I_ = Instruction;
    // Immediates: i32 when it fits, else u32; 64-bit only as the 2nd operand.
    macro_rules! imm {
        ($v:expr, |$x:ident| $e:expr) => {{
            let v: i64 = $v;
            if fits_i32(v) {
                let $x = v as i32;
                $e
            } else {
                let $x = v as u32;
                $e
            }
        }};
    }
    Ok(match *ops {
        [] => Ok(I_::with(code)),
        [R(a)] => I_::with1(code, a),
        [M(a)] => I_::with1(code, a),
        [I(a)] => imm!(a, |x| I_::with1(code, x)),
        [R(a), R(b)] => I_::with2(code, a, b),
        [R(a), M(b)] => I_::with2(code, a, b),
        [M(a), R(b)] => I_::with2(code, a, b),
        [R(a), I(b)] => {
            if fits_i32(b) {
                I_::with2(code, a, b as i32)
            } else if u32::try_from(b).is_ok() {
                I_::with2(code, a, b as u32)
            } else {
                I_::with2(code, a, b)
            }
        }
        [M(a), I(b)] => imm!(b, |x| I_::with2(code, a, x)),
        [I(a), I(b)] => I_::with2(code, a as i32, b as i32),
        [I(a), R(b)] => I_::with2(code, a as i32, b),
        [R(a), R(b), R(c)] => I_::with3(code, a, b, c),
        [R(a), R(b), M(c)] => I_::with3(code, a, b, c),
        [R(a), M(b), R(c)] => I_::with3(code, a, b, c),
        [M(a), R(b), R(c)] => I_::with3(code, a, b, c),
        [R(a), R(b), I(c)] => imm!(c, |x| I_::with3(code, a, b, x)),
        [R(a), M(b), I(c)] => imm!(c, |x| I_::with3(code, a, b, x)),
        [M(a), R(b), I(c)] => imm!(c, |x| I_::with3(code, a, b, x)),
        [R(a), I(b), I(c)] => I_::with3(code, a, b as i32, c as i32),
        [R(a), R(b), R(c), R(d)] => I_::with4(code, a, b, c, d),
        [R(a), R(b), M(c), R(d)] => I_::with4(code, a, b, c, d),
        [R(a), R(b), R(c), M(d)] => I_::with4(code, a, b, c, d),
        [R(a), R(b), R(c), I(d)] => imm!(d, |x| I_::with4(code, a, b, c, x)),
        [R(a), R(b), M(c), I(d)] => imm!(d, |x| I_::with4(code, a, b, c, x)),
        [R(a), R(b), I(c), I(d)] => I_::with4(code, a, b, c as i32, d as i32),
        [R(a), R(b), R(c), R(d), I(e)] => imm!(e, |x| I_::with5(code, a, b, c, d, x)),
        [R(a), R(b), M(c), R(d), I(e)] => imm!(e, |x| I_::with5(code, a, b, c, d, x)),
        [R(a), R(b), R(c), M(d), I(e)] => imm!(e, |x| I_::with5(code, a, b, c, d, x)),
        _ => return Err(format!("{code:?}: unsupported operand combination")),
    })
}

/// Length of `ins` encoded at `ip`, or the encoder's error.
pub fn encoded_len(ins: &Instruction, ip: u64) -> Result<usize, IcedError> {
    Encoder::new(64).encode(ins, ip)
}

/// Every encoded instruction with its address, in order.
pub type Listing = Vec<(u64, Instruction)>;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Debug)]
enum Node {
    Ins(Instruction),
    /// A near branch (jmp/jcc/call/loop/jrcxz) to a label.
    Branch(Code, Label),
    Bind(Label),
    /// `lea reg, [rip + label]`
    LeaLabel(Register, Label),
}

/// A sequence of instructions and labels.
#[derive(Clone, Debug, Default)]
pub struct Asm {
    nodes: Vec<Node>,
    labels: usize,
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn bind(&mut self, l: Label) {
        self.nodes.push(Node::Bind(l));
    }
    pub fn ins(&mut self, i: Instruction) {
        self.nodes.push(Node::Ins(i));
    }
    pub fn branch(&mut self, code: Code, l: Label) {
        self.nodes.push(Node::Branch(code, l));
    }
    pub fn lea_label(&mut self, reg: Register, l: Label) {
        self.nodes.push(Node::LeaLabel(reg, l));
    }
    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }
    /// Removes the nodes after the first `n` (undo of a failed item).
    pub fn truncate(&mut self, n: usize) {
        self.nodes.truncate(n);
    }
    /// The instructions (not labels) in order, for checks by the generators.
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.nodes.iter().filter_map(|n| if let Node::Ins(i) = n { Some(i) } else { None })
    }

    fn lea(reg: Register, target: u64) -> Result<Instruction, IcedError> {
        Instruction::with2(Code::Lea_r64_m, reg, MemoryOperand::with_base_displ(Register::RIP, target as i64))
    }

    fn node_ins(&self, n: &Node, ip: u64, addr: &[u64]) -> Result<Option<Instruction>, IcedError> {
        Ok(match n {
            Node::Ins(i) => Some(*i),
            Node::Branch(code, l) => Some(Instruction::with_branch(*code, addr.get(l.0).copied().unwrap_or(ip))?),
            Node::LeaLabel(r, l) => Some(Self::lea(*r, addr.get(l.0).copied().unwrap_or(ip))?),
            Node::Bind(_) => None,
        })
    }

    /// Encodes everything for address `base`. Short jmp/jcc that cannot
    /// reach become near ones; other short branches that cannot reach
    /// (loop, jrcxz) are an error.
    pub fn assemble(&self, base: u64) -> Result<Vec<u8>, String> {
        self.assemble_listed(base).map(|(code, _)| code)
    }

    /// [`Asm::assemble`], also returning every encoded instruction (branches
    /// and `lea` of labels included) with its address, in order, for checks
    /// of the encodings against a decoder.
    pub fn assemble_listed(&self, base: u64) -> Result<(Vec<u8>, Listing), String> {
        let mut codes: Vec<Option<Code>> =
            self.nodes.iter().map(|n| if let Node::Branch(c, _) = n { Some(*c) } else { None }).collect();
        let mut label_addr = vec![u64::MAX; self.labels];
        for _round in 0..16 {
            // Layout with the current branch forms.
            let mut ip = base;
            let mut sizes = Vec::with_capacity(self.nodes.len());
            for (k, n) in self.nodes.iter().enumerate() {
                let len = match n {
                    Node::Bind(l) => {
                        label_addr[l.0] = ip;
                        0
                    }
                    Node::Branch(_, _) => {
                        let b = Instruction::with_branch(codes[k].unwrap_or(Code::INVALID), ip)
                            .map_err(|e| e.to_string())?;
                        encoded_len(&b, ip).map_err(|e| format!("branch: {e}"))?
                    }
                    _ => {
                        let i = self.node_ins(n, ip, &[]).map_err(|e| e.to_string())?.ok_or("node")?;
                        encoded_len(&i, ip).map_err(|e| format!("{i:?}: {e}"))?
                    }
                };
                sizes.push(len);
                ip += len as u64;
            }
            // Widen short branches that do not reach.
            let mut changed = false;
            let mut ip = base;
            for (k, n) in self.nodes.iter().enumerate() {
                if let Node::Branch(_, l) = n {
                    let code = codes[k].unwrap_or(Code::INVALID);
                    let b = Instruction::with_branch(code, label_addr[l.0]).map_err(|e| e.to_string())?;
                    if Encoder::new(64).encode(&b, ip).is_err() {
                        let near = code.as_near_branch();
                        if near == code {
                            return Err(format!("{code:?} at {ip:#x} cannot reach {:#x}", label_addr[l.0]));
                        }
                        codes[k] = Some(near);
                        changed = true;
                    }
                }
                ip += sizes[k] as u64;
            }
            if changed {
                continue;
            }
            // Final encoding.
            let mut enc = Encoder::new(64);
            let mut ip = base;
            let mut listed = Vec::new();
            for (k, n) in self.nodes.iter().enumerate() {
                let ins = match n {
                    Node::Branch(_, l) => Some(
                        Instruction::with_branch(codes[k].unwrap_or(Code::INVALID), label_addr[l.0])
                            .map_err(|e| e.to_string())?,
                    ),
                    _ => self.node_ins(n, ip, &label_addr).map_err(|e| e.to_string())?,
                };
                if let Some(i) = ins {
                    let len = enc.encode(&i, ip).map_err(|e| format!("{i:?} at {ip:#x}: {e}"))?;
                    if len != sizes[k] {
                        return Err(format!("{i:?}: length changed from {} to {len}", sizes[k]));
                    }
                    listed.push((ip, i));
                    ip += len as u64;
                }
            }
            return Ok((enc.take_buffer(), listed));
        }
        Err("branch relaxation did not converge".into())
    }
}
