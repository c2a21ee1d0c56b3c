//! The code cache: translated blocks, their exits and links, and the
//! in-cache indirect-branch table.
//!
//! Blocks are bump-allocated in `CodeMemory`. When the cache is full or guest
//! code it was translated from changes, the whole cache is flushed (the
//! dispatcher only does this while no thread executes cached code); a
//! per-block LRU policy can replace whole-cache flushing later without
//! changing this interface.

#[allow(unsafe_code)]
mod mem;

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::Range;

pub use mem::{CodeMemory, DataTable, ForkStores};

mod addr_hash;
use addr_hash::AddrMap;

/// Private copies of the cache's shared pages, held across a fork.
pub struct CacheSnapshot {
    code: ForkStores,
    ibl: Option<ForkStores>,
    jt: Option<ForkStores>,
}

use crate::abi::{
    IBL_EMPTY, IBL_ENTRY_BACK, IBL_TABLE_SLOTS, IC_EMPTY, IC_ENTRIES, IC_REARM, INDIRECT_PC_AT, NO_SITE, SiteKind,
    Spilled, ibl_slots,
};
use crate::addr::{CachePc, GuestAddr};
use crate::translate::{
    IcForm, IcPatch, JtKey, JtSpace, MAX_BLOCK_BYTES, MAX_JT_BYTES, MAX_JT_ENTRIES, TranslateOptions, Translation,
    ibl_shared_code, short_compare, split_compare, stub_target, translate_block_in,
};

/// The record of a short-compare inline-cache entry that a target at or
/// above 2 GiB asked to fill (`ic_fill`): used, but still empty in the
/// code. Non-canonical, so no target equals it.
const IC_UNFIT: u64 = 0x8000_0000_0000_0001;

/// Lookups that pass a full inline cache by before the site asks to be
/// emptied and refilled (`ic_rearm`); doubled at each re-arming of the
/// site, up to `IC_REARM_MAX` times.
const IC_REARM_PERIOD: u64 = 4096;
const IC_REARM_MAX: u32 = 3;

/// Counter cells (`TranslateOptions::ic_counters`): exit ids up to this
/// have one.
const IC_COUNTER_CELLS: usize = 1 << 17;

/// A counter that never reaches zero.
const IC_NEVER: u64 = i64::MAX as u64;

/// Index of a block in the cache (valid until the next flush).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlockId(pub u32);

/// Index of a direct exit (what exit stubs report in `exit_id`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExitId(pub u32);

#[derive(Debug)]
pub struct Block {
    pub guest: GuestAddr,
    pub guest_len: u32,
    /// Where its code starts (its indirect entry, see `BLOCK_ENTRY`).
    pub start: CachePc,
    /// Where exits, inline caches and the dispatcher enter it.
    pub entry: CachePc,
    pub len: u32,
    pub exits: Range<u32>,
    pub insn_map: Vec<(u32, u32)>,
    /// See `Translation::spilled`.
    pub spilled: Vec<(u32, Spilled)>,
    /// It was translated with constants read from guest memory
    /// (`Translation::constants`), so it depends on more than its bytes.
    pub reads_constants: bool,
    /// It ends in a jump table made by this other block, whose pads (exits)
    /// it jumps to (see `translate::jump_table`).
    pub jt_owner: Option<BlockId>,
    /// The guest bytes it was translated from, kept for blocks on guest-
    /// writable code (see `revive`).
    saved: Option<Box<[u8]>>,
}

#[derive(Copy, Clone, Debug)]
struct Exit {
    /// Cache offset of the patchable rel32.
    slot: u32,
    /// Cache offset of the exit stub.
    stub: u32,
    target: GuestAddr,
    /// The block this exit is patched to jump to, if linked.
    linked: Option<BlockId>,
    /// For an inline-cache entry, its imm64 fields (cache offsets).
    ic: Option<IcPatch>,
}

/// Counters reported by `--stats`.
#[derive(Copy, Clone, Debug, Default)]
pub struct CacheStats {
    pub blocks: u64,
    pub guest_bytes: u64,
    pub cache_bytes: u64,
    pub links: u64,
    pub flushes: u64,
    pub ibl_inserts: u64,
    /// Inline-cache entries filled (see `ic_fill`).
    pub ic_fills: u64,
    /// Inline caches emptied for their current targets (`ic_rearm`).
    pub ic_rearms: u64,
    /// Blocks that end in a translated jump table (`translate::jump_table`).
    pub jump_tables: u64,
    /// Blocks that end in a jump table made by an earlier block.
    pub jump_tables_shared: u64,
    /// Invalidated blocks put back in service unchanged (see `revive`).
    pub revived: u64,
}

pub struct CodeCache {
    /// The registers of the thread about to enter the next block
    /// translated (`TranslateOptions::entry_regs`), taken by that
    /// translation.
    pub entry_hint: Option<[u64; 16]>,
    /// The bytes of the next block translated are a fetch window
    /// (`TranslateOptions::windowed`), taken by that translation.
    pub fetch_windowed: bool,
    mem: CodeMemory,
    top: usize,
    blocks: Vec<Block>,
    /// Each block's start, in order (`block_at` searches these: a compact
    /// array, for the few cache lines a binary search then touches).
    starts: Vec<u64>,
    by_guest: AddrMap<GuestAddr, BlockId>,
    /// Single-instruction blocks for stepping (see `translate_step`).
    step_by_guest: AddrMap<GuestAddr, BlockId>,
    /// Live blocks by the guest pages their code comes from (a block that
    /// spans pages is under each), so invalidation finds them directly.
    by_page: AddrMap<u64, Vec<BlockId>>,
    /// Blocks by the guest pages of the constants they were translated
    /// with (`Translation::constants`; dead ones are skipped).
    by_data_page: AddrMap<u64, Vec<BlockId>>,
    /// For each block, the exits that were linked to it (some may have been
    /// unlinked or relinked since: check `Exit::linked`).
    incoming: Vec<Vec<u32>>,
    /// The latest invalidated block for each guest pc that kept its bytes.
    dead_by_guest: AddrMap<GuestAddr, BlockId>,
    exits: Vec<Exit>,
    /// The sites' table-lookup counters (`TranslateOptions::ic_counters`),
    /// by exit id, below 2 GiB; None if they could not be placed there.
    ic_counters: Option<DataTable>,
    /// How many times each site was re-armed (`ic_rearm`).
    ic_rearms: HashMap<u32, u32>,
    /// The sites whose counter is still in their code.
    ic_counting: HashSet<u32>,
    ibl: DataTable,
    /// The blocks' jump tables (`Translation::jump_table`), below 2 GiB,
    /// filled from the start up to `jt_top` (until a flush); None if it
    /// could not be placed there.
    jt: Option<DataTable>,
    jt_top: usize,
    /// The jump tables made so far: where each is and the block whose pads
    /// its entries lead to (valid while that block is live).
    jt_made: HashMap<JtKey, (u32, BlockId)>,
    /// Cache addresses of the lookups' shared code (`ibl_shared_code`):
    /// the empty entry and the second probe; blocks start after it.
    ibl_empty: u64,
    ibl_probe2: u64,
    shared_len: usize,
    /// Other threads may run cached code (code is then only changed by
    /// stores that are atomic for them).
    threaded: bool,
    opts: TranslateOptions,
    pub stats: CacheStats,
}

/// Every block starts a cache line, so its indirect entry (the 64 bytes
/// before its code) is one line and its code starts the next: where a hot
/// block fell in its lines had decided how fast it ran. Over 8 placements
/// of the same cache (its contents moved by 0-112 bytes), fib(38) ran in
/// 0.12 s or 0.24 s with 16-byte alignment and 0.12 s in every one with
/// this, the switch interpreter in 0.32-0.59 s and 0.31-0.32 s (Zen 4 VM,
/// native 0.09 s and 0.23 s). About 24 bytes more per block.
const BLOCK_ALIGN: usize = 64;

/// Room for jump tables: at least 2,048 tables of 256 entries.
const JT_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[error("code cache is full")]
pub struct CacheFull;

impl CodeCache {
    /// A cache of `size` bytes, placed near `near` (and within the band
    /// `within`, when given: see `CodeMemory::new`).
    pub fn new(
        size: usize,
        near: Option<GuestAddr>,
        within: Option<(u64, u64)>,
        opts: TranslateOptions,
    ) -> io::Result<Self> {
        let mut mem = CodeMemory::new(size, near.map(|g| g.get()), within)?;
        // Under isolation the tables that steer cached code are read-only
        // where the program's stores could reach (see `DataTable`); the
        // inline caches' counters, which cached code writes, are not, and
        // a forged counter only asks the dispatcher for a re-arming.
        let protect = opts.confine_stores;
        let mut ibl = DataTable::new(IBL_TABLE_SLOTS * 8, true, protect)?;
        // Written whole below (`clear_ibl`).
        ibl.populate();
        let mut opts = opts;
        opts.ibl_table = u32::try_from(ibl.addr()).ok().filter(|&a| a < 0x7fff_0000 - (IBL_TABLE_SLOTS as u32) * 8);
        let jt = DataTable::new(JT_BYTES, true, protect)?;
        let jt = (jt.range().1 <= 0x7fff_0000).then_some(jt);
        let ic_counters = DataTable::new(IC_COUNTER_CELLS * 8, true, false)?;
        let ic_counters = (ic_counters.range().1 <= 0x7fff_0000).then_some(ic_counters);
        opts.ic_counters = ic_counters.as_ref().map(|t| (t.addr() as u32, IC_COUNTER_CELLS as u32));
        let (shared, empty, probe2) = ibl_shared_code(mem.base(), opts.ibl_table);
        mem.write(0, &shared);
        let shared_len = (shared.len() + 63) & !63;
        let base = mem.base().get();
        let mut c = Self {
            mem,
            top: shared_len,
            blocks: Vec::new(),
            starts: Vec::new(),
            by_guest: AddrMap::default(),
            step_by_guest: AddrMap::default(),
            by_page: AddrMap::default(),
            by_data_page: AddrMap::default(),
            incoming: Vec::new(),
            dead_by_guest: AddrMap::default(),
            exits: Vec::new(),
            ic_counters,
            ic_rearms: HashMap::new(),
            ic_counting: HashSet::new(),
            ibl,
            jt,
            jt_top: 0,
            jt_made: HashMap::new(),
            ibl_empty: base + empty as u64,
            ibl_probe2: base + probe2 as u64,
            shared_len,
            threaded: false,
            opts,
            entry_hint: None,
            fetch_windowed: false,
            stats: CacheStats::default(),
        };
        c.clear_ibl();
        Ok(c)
    }

    /// Address of the indirect-branch table, for `GuestContext::ibl_table`.
    pub fn ibl_table(&self) -> u64 {
        self.ibl.addr()
    }

    /// Address of the lookups' second probe, for `GuestContext::ibl_probe2`.
    pub fn ibl_probe2(&self) -> u64 {
        self.ibl_probe2
    }

    /// Host ranges the guest must never map over.
    pub fn reserved_ranges(&self) -> Vec<(u64, u64)> {
        let mut v = self.mem.ranges().to_vec();
        v.extend(self.ibl.ranges());
        v.extend(self.jt.iter().flat_map(DataTable::ranges));
        v.extend(self.ic_counters.iter().flat_map(DataTable::ranges));
        v
    }

    /// Start translated code `bytes` (a multiple of 16) further into the
    /// cache, now and after every flush: the same translations at another
    /// place, to measure how much a workload's speed depends on where its
    /// code lands (`--code-offset`; see "Where code lands" in the design
    /// notes). Only before the first translation.
    pub fn offset_code(&mut self, bytes: usize) {
        assert!(self.blocks.is_empty() && bytes.is_multiple_of(16), "code offset after translating, or unaligned");
        self.shared_len += bytes;
        self.top = self.shared_len;
    }

    pub fn base(&self) -> CachePc {
        self.mem.base()
    }

    pub fn lookup(&self, pc: GuestAddr) -> Option<(BlockId, CachePc)> {
        self.by_guest.get(&pc).map(|&id| (id, self.blocks[id.0 as usize].entry))
    }

    pub fn block(&self, id: BlockId) -> &Block {
        &self.blocks[id.0 as usize]
    }

    /// Every block in the cache, oldest first (stale ones included).
    pub fn block_ids(&self) -> impl Iterator<Item = BlockId> + use<> {
        (0..self.blocks.len() as u32).map(BlockId)
    }

    /// Where block `id`'s exit stubs start (offset from its start), if it
    /// has any: its code ends there.
    pub fn stubs_offset(&self, id: BlockId) -> Option<u32> {
        let b = self.block(id);
        let at = (b.start.get() - self.base().get()) as u32;
        self.exits[b.exits.start as usize..b.exits.end as usize].iter().map(|x| x.stub - at).min()
    }

    /// The guest registers that are in spill slots, not in the CPU, when a
    /// fault is at cache address `pc` (none outside the cache).
    pub fn spilled_at(&self, pc: CachePc) -> Spilled {
        let Some(id) = self.block_at(pc) else { return Spilled::default() };
        let b = self.block(id);
        let off = (pc.get() - b.start.get()) as u32;
        b.spilled.binary_search_by_key(&off, |&(o, _)| o).map_or(Spilled::default(), |i| b.spilled[i].1)
    }

    /// The block whose code contains cache address `pc`.
    pub fn block_at(&self, pc: CachePc) -> Option<BlockId> {
        if !self.mem.contains(pc) {
            return None;
        }
        let i = self.starts.partition_point(|&s| s <= pc.get());
        let b = self.blocks.get(i.checked_sub(1)?)?;
        (pc.get() < b.start.get() + b.len as u64).then_some(BlockId((i - 1) as u32))
    }

    pub fn contains(&self, pc: CachePc) -> bool {
        self.mem.contains(pc)
    }

    /// The `len` cache bytes at `pc` (which must be inside the cache).
    pub fn read(&self, pc: CachePc, len: usize) -> &[u8] {
        self.mem.read((pc.get() - self.mem.base().get()) as usize, len)
    }

    /// Translate the block at `pc` from `bytes` (its readable guest code).
    pub fn translate(&mut self, pc: GuestAddr, bytes: &[u8]) -> Result<(BlockId, CachePc), CacheFull> {
        let (id, at) = self.translate_with(pc, bytes, self.opts)?;
        self.by_guest.insert(pc, id);
        Ok((id, at))
    }

    /// The single-instruction block for `pc` that the dispatcher runs while
    /// the guest's trap flag is set (see `TranslateOptions::single_step`):
    /// kept apart from the ordinary blocks, never linked, never in the
    /// indirect-branch table; invalidated with the code like any block.
    pub fn translate_step(&mut self, pc: GuestAddr, bytes: &[u8]) -> Result<(BlockId, CachePc), CacheFull> {
        if let Some(&id) = self.step_by_guest.get(&pc) {
            let b = &self.blocks[id.0 as usize];
            if b.guest_len > 0 {
                return Ok((id, b.entry));
            }
        }
        let opts = TranslateOptions { single_step: true, ..self.opts };
        let (id, at) = self.translate_with(pc, bytes, opts)?;
        self.step_by_guest.insert(pc, id);
        Ok((id, at))
    }

    fn translate_with(
        &mut self,
        pc: GuestAddr,
        bytes: &[u8],
        opts: TranslateOptions,
    ) -> Result<(BlockId, CachePc), CacheFull> {
        if self.top + MAX_BLOCK_BYTES + MAX_JT_BYTES + 4096 > self.mem.size() {
            return Err(CacheFull);
        }
        let known = |k: &JtKey| {
            let &(at, owner) = self.jt_made.get(k)?;
            (self.blocks[owner.0 as usize].guest_len > 0).then_some(at)
        };
        let jt_space = match &self.jt {
            Some(_) if self.jt_top + MAX_JT_ENTRIES * 8 > JT_BYTES => return Err(CacheFull),
            Some(jt) => Some(JtSpace {
                start: (jt.addr() + self.jt_top as u64) as u32,
                end: jt.range().1 as u32,
                known: &known,
            }),
            None => None,
        };
        let at = self.mem.base().add(self.top as u64);
        let opts = TranslateOptions {
            entry_regs: self.entry_hint.take(),
            windowed: std::mem::take(&mut self.fetch_windowed),
            ic_counters: if self.threaded { None } else { self.opts.ic_counters },
            // With threads, returns go straight to the table (see
            // `go_threaded`).
            ic_kinds: if self.threaded { opts.ic_kinds & !(1 << SiteKind::Ret as u32) } else { opts.ic_kinds },
            ..opts
        };
        let t: Translation = translate_block_in(pc, bytes, at, self.exits.len() as u32, opts, jt_space);
        assert!(t.code.len() <= MAX_BLOCK_BYTES + MAX_JT_BYTES + 2048, "block larger than its cap");
        self.mem.write(self.top, &t.code);
        let id = BlockId(self.blocks.len() as u32);
        let mut jt_owner = None;
        if let (Some(j), Some(table)) = (&t.jump_table, self.jt.as_mut()) {
            if let Some(entries) = &j.entries {
                let first = (j.at as u64 - table.addr()) as usize / 8;
                for (k, &e) in entries.iter().enumerate() {
                    table.store_word(first + k, e);
                }
                self.jt_top = (first + entries.len()) * 8;
                if j.shareable {
                    self.jt_made.insert(j.key, (j.at, id));
                }
                self.stats.jump_tables += 1;
            } else {
                jt_owner = self.jt_made.get(&j.key).map(|&(_, o)| o);
                self.stats.jump_tables_shared += 1;
            }
        }
        if let Some(cells) = self.ic_counters.as_mut() {
            for &site in &t.ic_counted {
                cells.store_word(site as usize, IC_REARM_PERIOD);
                self.ic_counting.insert(site);
            }
        }
        let first = self.exits.len() as u32;
        for x in &t.exits {
            self.exits.push(Exit {
                slot: self.top as u32 + x.slot,
                stub: self.top as u32 + x.stub,
                target: x.target,
                linked: None,
                ic: x.ic.map(|p| IcPatch {
                    cmp_imm: self.top as u32 + p.cmp_imm,
                    stub_imm: self.top as u32 + p.stub_imm,
                    fall_at: self.top as u32 + p.fall_at,
                    to_table: p.to_table,
                    to_fill: p.to_fill,
                    count_at: if p.count_at == 0 { 0 } else { self.top as u32 + p.count_at },
                    count_len: p.count_len,
                    bypass_at: if p.bypass_at == 0 { 0 } else { self.top as u32 + p.bypass_at },
                    bypass_to: if p.bypass_at == 0 { 0 } else { self.top as u32 + p.bypass_to },
                    form: p.form,
                    cmp_hi: if p.cmp_hi == 0 { 0 } else { self.top as u32 + p.cmp_hi },
                }),
            });
        }
        self.starts.push(at.get());
        self.blocks.push(Block {
            guest: pc,
            guest_len: t.guest_len,
            start: at,
            entry: at.add(t.entry as u64),
            len: t.code.len() as u32,
            exits: first..self.exits.len() as u32,
            insn_map: t.insn_map,
            spilled: t.spilled,
            reads_constants: !t.constants.is_empty(),
            jt_owner,
            saved: None,
        });
        self.incoming.push(Vec::new());
        for page in guest_pages(pc, t.guest_len) {
            self.by_page.entry(page).or_default().push(id);
        }
        for &at in &t.constants {
            for page in guest_pages(at, 8) {
                let list = self.by_data_page.entry(page).or_default();
                if list.last() != Some(&id) {
                    list.push(id);
                }
            }
        }
        self.top = (self.top + t.code.len()).next_multiple_of(BLOCK_ALIGN);
        self.stats.blocks += 1;
        self.stats.guest_bytes += t.guest_len as u64;
        self.stats.cache_bytes += t.code.len() as u64;
        Ok((id, at.add(t.entry as u64)))
    }

    /// As `translate`, keeping the guest bytes so that the block can be
    /// revived after an invalidation that did not change them (JIT
    /// compilers write into pages that also hold code they keep running).
    pub fn translate_revivable(&mut self, pc: GuestAddr, bytes: &[u8]) -> Result<(BlockId, CachePc), CacheFull> {
        let (id, at) = self.translate(pc, bytes)?;
        let b = &mut self.blocks[id.0 as usize];
        if !b.reads_constants {
            b.saved = Some(bytes[..b.guest_len as usize].into());
        }
        Ok((id, at))
    }

    /// The block last invalidated at `pc`, back in service, if its guest
    /// bytes are what `bytes` (the code at `pc` now) starts with: its code
    /// is still in the cache, unchanged (invalidation only unhooks blocks),
    /// and a translation depends only on the pc and the bytes. Its exits
    /// and the links into it are re-made lazily, as for a new block.
    pub fn revive(&mut self, pc: GuestAddr, bytes: &[u8]) -> Option<(BlockId, CachePc)> {
        let id = *self.dead_by_guest.get(&pc)?;
        let b = &self.blocks[id.0 as usize];
        let saved = b.saved.as_ref()?;
        if bytes.len() < saved.len() || bytes[..saved.len()] != saved[..] {
            return None;
        }
        self.dead_by_guest.remove(&pc);
        let len = saved.len() as u32;
        let entry = b.entry;
        self.blocks[id.0 as usize].guest_len = len;
        self.by_guest.insert(pc, id);
        for page in guest_pages(pc, len) {
            self.by_page.entry(page).or_default().push(id);
        }
        self.stats.revived += 1;
        Some((id, entry))
    }

    /// Guest target of a direct exit.
    pub fn exit_target(&self, id: ExitId) -> Option<GuestAddr> {
        self.exits.get(id.0 as usize).map(|x| x.target)
    }

    /// Patch exit `id` to jump straight to `to` (which must be the cache
    /// code for the exit's target).
    pub fn link(&mut self, id: ExitId, to: CachePc) {
        // The block is the exit's target's, which the map finds at once
        // (a search of the block starts, the fallback, was ~3% of a large
        // program's start-up).
        let by_target = (self.exits.get(id.0 as usize))
            .and_then(|x| self.by_guest.get(&x.target))
            .copied()
            .filter(|b| self.blocks[b.0 as usize].entry == to);
        let Some(to_block) = by_target.or_else(|| self.by_cache_start(to)) else { return };
        let Some(x) = self.exits.get_mut(id.0 as usize) else { return };
        let next = x.slot as i64 + 4;
        let rel = (to.get() - self.mem.base().get()) as i64 - next;
        x.linked = Some(to_block);
        let slot = x.slot as usize;
        self.mem.patch_rel32(slot, rel as i32);
        self.incoming[to_block.0 as usize].push(id.0);
        self.stats.links += 1;
    }

    /// A lookup at the indirect site whose first inline-cache entry is
    /// `site` missed for guest `pc`, whose translation is at `to`: put `pc`
    /// in the site's first empty entry, if it has one and `pc` is in none.
    /// Entries are filled once and kept (until a flush); a filled entry
    /// whose block goes away is unlinked like any exit, and its stub brings
    /// the thread back for a new translation of the same target.
    ///
    /// Other threads may run the site meanwhile: the stub's target and the
    /// link are written before the compare's immediate (one aligned store),
    /// so a thread that sees the entry match also sees where it leads; one
    /// that still sees `IC_EMPTY` goes on to the table.
    pub fn ic_fill(&mut self, site: ExitId, pc: GuestAddr, to: CachePc) {
        let site = if site.0 != NO_SITE && site.0 & IC_REARM != 0 {
            let site = ExitId(site.0 & !IC_REARM);
            self.ic_rearm(site);
            site
        } else {
            site
        };
        let first = site.0 as usize;
        let Some(entries) = self.ic_site(first) else { return };
        if entries.iter().any(|x| x.target == pc) {
            return;
        }
        if pc.get() == IC_EMPTY {
            return;
        }
        // (Full: another thread filled the last entry meanwhile.)
        let Some(k) = entries.iter().position(|x| x.target.get() == IC_EMPTY) else { return };
        let i = first + k;
        let patch = self.exits[i].ic.expect("checked above");
        if patch.form == IcForm::Split {
            let (lo, hi) = split_compare(pc.get());
            self.mem.patch_u64(patch.stub_imm as usize, pc.get());
            self.exits[i].target = pc;
            self.link(ExitId(i as u32), to);
            self.mem.write(patch.cmp_imm as usize, &lo.to_le_bytes());
            self.mem.write(patch.cmp_hi as usize, &hi.to_le_bytes());
            self.stats.ic_fills += 1;
        } else if patch.form == IcForm::Short
            && let Some(d) = short_compare(pc.get())
        {
            self.mem.patch_u64(patch.stub_imm as usize, pc.get());
            self.exits[i].target = pc;
            self.link(ExitId(i as u32), to);
            self.mem.patch_u32(patch.cmp_imm as usize, d as u32);
            self.stats.ic_fills += 1;
        } else if patch.form == IcForm::Short {
            // A target the short compare cannot hold: the entry stays
            // empty in the code and counts as used, so that once every
            // entry is, such targets go to the table.
            self.exits[i].target = GuestAddr(IC_UNFIT);
        } else {
            self.mem.patch_u64(patch.stub_imm as usize, pc.get());
            self.exits[i].target = pc;
            self.link(ExitId(i as u32), to);
            self.mem.patch_u64(patch.cmp_imm as usize, pc.get().wrapping_neg());
            self.stats.ic_fills += 1;
        }
        if self.exits[first..first + IC_ENTRIES].iter().all(|x| x.target.get() != IC_EMPTY) {
            // Full: other targets go to the table from now on (one byte, the
            // displacement of a short jump, either of whose values is right).
            self.mem.patch_u8(patch.fall_at as usize, patch.to_table);
        }
    }

    /// The entries of the inline cache whose first entry is exit `first`,
    /// or None if `first` is not a site's first entry (the dispatcher takes
    /// `EXIT_ID` as the cached code left it; blocks whose sites are next to
    /// each other must not be taken for one).
    fn ic_site(&self, first: usize) -> Option<&[Exit]> {
        let entries = self.exits.get(first..first + IC_ENTRIES)?;
        let fall = entries[0].ic?.fall_at;
        let same = |x: &Exit| x.ic.is_some_and(|p| p.fall_at == fall);
        let starts = first == 0 || !same(&self.exits[first - 1]);
        (starts && entries.iter().all(same)).then_some(entries)
    }

    /// The site whose first entry is `site` counted `IC_REARM_PERIOD << n`
    /// lookups past its full inline cache: empty its entries, so that the
    /// next targets there fill them (the targets it has now, rather than
    /// the first it ever had: CPython's `_Py_Dealloc` calls `tp_dealloc`
    /// of the types freed at start-up first, and of ints in a loop later),
    /// and count again over twice as many (at most `IC_REARM_MAX` times).
    /// Then the counter is replaced by no-ops: a site still passed by that
    /// often has more hot targets than entries (a megamorphic call), and
    /// counting there costs about a nanosecond per lookup (C++ virtual
    /// calls through one site to three classes: 0.34 s -> 0.38 s); so
    /// does even a short jump over the counter.
    ///
    /// Only while no other thread runs cached code: a thread between an
    /// entry's compare and its jump would follow the new link with the old
    /// target. Once the process has threads, its counter is set never to
    /// reach zero.
    pub fn ic_rearm(&mut self, site: ExitId) {
        let first = site.0 as usize;
        let Some(entries) = self.ic_site(first) else { return };
        let Some(p) = entries[0].ic else { return };
        let n = self.ic_rearms.entry(site.0).or_insert(0);
        if self.threaded || *n >= IC_REARM_MAX || p.to_fill.is_none() {
            self.stop_counting(site.0);
            return;
        }
        *n += 1;
        let next = IC_REARM_PERIOD << *n;
        if let Some(cells) = self.ic_counters.as_mut()
            && first < IC_COUNTER_CELLS
        {
            cells.store_word(first, next);
        }
        for i in first..first + IC_ENTRIES {
            let q = self.exits[i].ic.expect("an inline cache's entries all have patches");
            // No compare matches from here on; then the jump goes back to
            // its stub, which names the empty target.
            match q.form {
                IcForm::Wide => self.mem.patch_u64(q.cmp_imm as usize, IC_EMPTY.wrapping_neg()),
                IcForm::Short => {
                    let d = short_compare(IC_EMPTY).expect("an empty entry has a short compare");
                    self.mem.patch_u32(q.cmp_imm as usize, d as u32);
                }
                IcForm::Split => {
                    let (lo, hi) = split_compare(IC_EMPTY);
                    self.mem.write(q.cmp_hi as usize, &hi.to_le_bytes());
                    self.mem.write(q.cmp_imm as usize, &lo.to_le_bytes());
                }
            }
            self.unlink_exit(i);
            self.mem.patch_u64(q.stub_imm as usize, stub_target(GuestAddr(IC_EMPTY), q.form).get());
            self.exits[i].target = GuestAddr(IC_EMPTY);
        }
        if let Some(to_fill) = p.to_fill {
            self.mem.patch_u8(p.fall_at as usize, to_fill);
        }
        self.stats.ic_rearms += 1;
    }

    /// The site whose first entry is `site` counts no more: its cell never
    /// reaches zero again and, while no other thread runs cached code, no-ops
    /// replace the counter (several stores). Even a short jump over it
    /// costs as much as counting.
    fn stop_counting(&mut self, site: u32) {
        if let Some(cells) = self.ic_counters.as_mut()
            && (site as usize) < IC_COUNTER_CELLS
        {
            cells.store_word(site as usize, IC_NEVER);
        }
        if self.threaded || !self.ic_counting.remove(&site) {
            return;
        }
        let Some(p) = self.exits.get(site as usize).and_then(|x| x.ic) else { return };
        if p.count_at != 0 {
            let mut e = crate::emit::Emitter::new(self.mem.base());
            e.pad(p.count_len as usize);
            self.mem.write(p.count_at as usize, &e.into_bytes());
        }
    }

    /// Point every direct exit of `block` back at its stub, so the thread
    /// running it returns to the dispatcher at the block's end.
    /// A block that shares another's jump table leaves through that
    /// block's pads: those are unlinked too.
    pub fn unlink_exits(&mut self, block: BlockId) {
        let b = &self.blocks[block.0 as usize];
        let owner = b.jt_owner.map(|o| self.blocks[o.0 as usize].exits.clone());
        for i in b.exits.clone().chain(owner.unwrap_or_default()) {
            self.unlink_exit(i as usize);
        }
    }

    fn unlink_exit(&mut self, i: usize) {
        let x = &mut self.exits[i];
        if x.linked.take().is_some() {
            let rel = x.stub as i64 - (x.slot as i64 + 4);
            let slot = x.slot as usize;
            self.mem.patch_rel32(slot, rel as i32);
        }
    }

    fn by_cache_start(&self, pc: CachePc) -> Option<BlockId> {
        let id = self.block_at(pc)?;
        (self.blocks[id.0 as usize].entry == pc).then_some(id)
    }

    /// Guest code in [start, end) changed: make every translation of it
    /// unreachable. With `may_flush` (no other thread can be running cached
    /// code) the whole cache is simply dropped; otherwise the stale blocks
    /// are unlinked, forgotten by the lookup structures and left in place
    /// (a thread still inside one finishes it and then leaves).
    pub fn invalidate(&mut self, start: GuestAddr, end: GuestAddr, may_flush: bool) {
        if may_flush {
            self.flush();
            return;
        }
        let mut dead: Vec<BlockId> = Vec::new();
        for page in self.pages_with_blocks(start, end) {
            let Some(list) = self.by_page.get_mut(&page) else { continue };
            let blocks = &self.blocks;
            list.retain(|&b| {
                let blk = &blocks[b.0 as usize];
                let hit = blk.guest_len > 0 && blk.guest < end && start.get() < blk.guest.get() + blk.guest_len as u64;
                if hit && !dead.contains(&b) {
                    dead.push(b);
                }
                !hit && blk.guest_len > 0
            });
        }
        self.kill(&dead);
        // A dead block also listed under a page outside [start, end) stays
        // there until that page's list is next filtered (it is skipped as
        // dead: guest_len 0).
    }

    /// Memory in guest [start, end) that translations read constants from
    /// changed its mapping or protection: drop those translations (all of
    /// them with `may_flush`, as `invalidate`). Whether any was live.
    pub fn invalidate_data(&mut self, start: GuestAddr, end: GuestAddr, may_flush: bool) -> bool {
        if self.by_data_page.is_empty() || end <= start {
            return false;
        }
        let (first, last) = (start.get() >> 12, (end.get() - 1) >> 12);
        let pages: Vec<u64> = if last - first < self.by_data_page.len() as u64 {
            (first..=last).filter(|p| self.by_data_page.contains_key(p)).collect()
        } else {
            self.by_data_page.keys().copied().filter(|p| (first..=last).contains(p)).collect()
        };
        let mut dead: Vec<BlockId> = Vec::new();
        for page in pages {
            for b in self.by_data_page.remove(&page).unwrap_or_default() {
                if self.blocks[b.0 as usize].guest_len > 0 && !dead.contains(&b) {
                    dead.push(b);
                }
            }
        }
        if dead.is_empty() {
            return false;
        }
        if may_flush {
            self.flush();
        } else {
            self.kill(&dead);
        }
        true
    }

    /// Unhook `dead` blocks: unlink the exits into them, empty their table
    /// slots, forget them by pc (keeping revivable ones for `revive`).
    fn kill(&mut self, dead: &[BlockId]) {
        for &b in dead {
            for i in std::mem::take(&mut self.incoming[b.0 as usize]) {
                if self.exits[i as usize].linked == Some(b) {
                    self.unlink_exit(i as usize);
                }
            }
            // Only the slots of the block's own guest pc can hold it.
            let blk = &self.blocks[b.0 as usize];
            let (s0, s1) = (blk.start.get(), blk.start.get() + blk.len as u64);
            for idx in ibl_slots(blk.guest.get()) {
                let pc = self.ibl.word(idx);
                if pc >= s0 && pc < s1 {
                    self.ibl_store(idx, self.ibl_empty);
                }
            }
            let blk = &mut self.blocks[b.0 as usize];
            if self.by_guest.get(&blk.guest) == Some(&b) {
                self.by_guest.remove(&blk.guest);
            }
            blk.guest_len = 0;
            if blk.saved.is_some() {
                self.dead_by_guest.insert(blk.guest, b);
            }
        }
    }

    /// The guest pages in [start, end) that have blocks (by walking the
    /// range or the index, whichever is smaller).
    fn pages_with_blocks(&self, start: GuestAddr, end: GuestAddr) -> Vec<u64> {
        if end <= start {
            return Vec::new();
        }
        let (first, last) = (start.get() >> 12, (end.get() - 1) >> 12);
        if last - first < self.by_page.len() as u64 {
            (first..=last).filter(|p| self.by_page.contains_key(p)).collect()
        } else {
            self.by_page.keys().copied().filter(|p| (first..=last).contains(p)).collect()
        }
    }

    /// Record guest `pc` -> `to` in the in-cache indirect-branch table.
    ///
    /// A slot holds a block's indirect entry, which checks the target
    /// itself, so a slot may be replaced while other threads run cached
    /// code: each store is one aligned 8-byte word, and whichever entry a
    /// lookup reads, old or new, decides correctly whether it is the target.
    ///
    /// `pc` goes into its home slot (the lookup's first probe); what was
    /// there moves to the next slot (its second probe), so that two hot
    /// targets with the same home both stay, and the target that missed
    /// last (most likely the hot one) is found first.
    /// `to` is the block's entry; the table holds its indirect entry.
    pub fn ibl_insert(&mut self, pc: GuestAddr, to: CachePc) {
        let to = to.get() - IBL_ENTRY_BACK;
        let [home, next] = ibl_slots(pc.get());
        let old = (self.ibl_pc(home), self.ibl.word(home));
        if old.0 != pc.get() && old.0 != IBL_EMPTY {
            self.ibl_store(next, old.1);
        } else if self.ibl_pc(next) == pc.get() {
            self.ibl_store(next, self.ibl_empty);
        }
        self.ibl_store(home, to);
        self.stats.ibl_inserts += 1;
    }

    /// Slot `i` now leads to `entry`, the indirect entry of guest `pc`.
    fn ibl_store(&mut self, i: usize, entry: u64) {
        self.ibl.store_word(i, entry);
    }

    /// The guest pc whose indirect entry slot `i` holds (`IBL_EMPTY`: none),
    /// read where the lookups read it: the entry's `mov rdx, -pc`. (No
    /// shadow table: its 512 KiB would be pages touched by every process.)
    fn ibl_pc(&mut self, i: usize) -> u64 {
        let entry = self.ibl.word(i);
        let at = (entry - self.mem.base().get()) as usize + INDIRECT_PC_AT;
        let minus_pc = u64::from_le_bytes(self.mem.read(at, 8).try_into().expect("8 bytes"));
        minus_pc.wrapping_neg()
    }

    fn clear_ibl(&mut self) {
        let empty = self.ibl_empty;
        self.ibl.fill(empty);
    }

    /// Does any translated block come from guest bytes in [start, end)?
    pub fn overlaps(&self, start: GuestAddr, end: GuestAddr) -> bool {
        self.pages_with_blocks(start, end).into_iter().any(|p| {
            self.by_page[&p].iter().any(|&b| {
                let b = &self.blocks[b.0 as usize];
                b.guest_len > 0 && b.guest < end && start.get() < b.guest.get() + b.guest_len as u64
            })
        })
    }

    /// Before fork: the code so far (and protected tables) becomes shared,
    /// copy-on-write, with the child to come (`CodeMemory::prepare_fork`);
    /// returns the child's stores.
    pub fn snapshot_for_fork(&mut self) -> io::Result<CacheSnapshot> {
        Ok(CacheSnapshot {
            code: self.mem.prepare_fork(self.top)?,
            ibl: self.ibl.prepare_fork(IBL_TABLE_SLOTS * 8)?,
            jt: match self.jt.as_mut() {
                Some(t) => t.prepare_fork(self.jt_top)?,
                None => None,
            },
        })
    }

    /// In the forked child: stop sharing cache pages (and protected
    /// tables) with the parent.
    pub fn adopt_snapshot(&mut self, snap: CacheSnapshot) -> io::Result<()> {
        self.mem.forked_child(snap.code, self.top)?;
        if let Some(s) = snap.ibl {
            self.ibl.forked_child(s, IBL_TABLE_SLOTS * 8)?;
        }
        if let (Some(s), Some(t)) = (snap.jt, self.jt.as_mut()) {
            t.forked_child(s, self.jt_top)?;
        }
        Ok(())
    }

    /// From now on other threads may run cached code while this one
    /// changes the cache (indirect lookups need nothing for it; code is
    /// then only patched with stores atomic for them).
    pub fn go_threaded(&mut self) {
        // Inline caches are re-armed only with one thread (see `ic_rearm`):
        // the counters go now, and blocks translated from now on have none.
        let sites: Vec<u32> = self.ic_counting.iter().copied().collect();
        for site in sites {
            self.stop_counting(site);
        }
        // A return's inline cache that cannot follow its current callers
        // any more costs more than it saves (a threaded python3 loop, its
        // returns' caches filled by their first targets: 1.55x -> 1.83x
        // native): a jump to the table replaces its compares (the site has
        // spilled rdx and holds the target in rcx, as the table expects).
        for first in 0..self.exits.len() {
            let Some(p) = self.ic_site(first).and_then(|e| e[0].ic) else { continue };
            if p.bypass_at == 0 {
                continue;
            }
            let rel = p.bypass_to as i32 - (p.bypass_at as i32 + 5);
            let mut jmp = [0xE9, 0, 0, 0, 0];
            jmp[1..].copy_from_slice(&rel.to_le_bytes());
            self.mem.write(p.bypass_at as usize, &jmp);
            // Empty entries are no reason to fill any more.
            self.mem.patch_u8(p.fall_at as usize, p.to_table);
        }
        self.threaded = true;
    }

    /// Drop every translation. Only call while no thread executes cached code.
    pub fn flush(&mut self) {
        self.top = self.shared_len;
        self.mem.discard_from(self.top);
        self.blocks.clear();
        self.starts.clear();
        self.by_guest.clear();
        self.step_by_guest.clear();
        self.by_page.clear();
        self.by_data_page.clear();
        self.incoming.clear();
        self.dead_by_guest.clear();
        self.exits.clear();
        self.ic_rearms.clear();
        self.ic_counting.clear();
        self.clear_ibl();
        self.jt_top = 0;
        if let Some(t) = self.jt.as_mut() {
            t.discard();
        }
        self.jt_made.clear();
        self.stats.flushes += 1;
    }
}

/// The guest pages (numbers) that [pc, pc + len) touches (at least pc's).
fn guest_pages(pc: GuestAddr, len: u32) -> impl Iterator<Item = u64> {
    let first = pc.get() >> 12;
    let last = (pc.get() + len.max(1) as u64 - 1) >> 12;
    first..=last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::IC_KINDS;

    // mov eax, 1; ret   and   mov eax, 2; ret
    const ONE: [u8; 6] = [0xB8, 1, 0, 0, 0, 0xC3];
    const TWO: [u8; 6] = [0xB8, 2, 0, 0, 0, 0xC3];

    fn cache() -> CodeCache {
        CodeCache::new(1 << 20, None, None, TranslateOptions::default()).unwrap()
    }

    #[test]
    fn invalidated_block_revives_only_with_the_same_bytes() {
        let mut c = cache();
        let pc = GuestAddr(0x40_1000);
        let (id, at) = c.translate_revivable(pc, &ONE).unwrap();
        assert!(c.overlaps(pc, GuestAddr(pc.get() + 1)));
        c.invalidate(pc, GuestAddr(pc.get() + 1), false);
        assert!(c.lookup(pc).is_none());
        assert!(!c.overlaps(pc, GuestAddr(pc.get() + 6)));
        // Different bytes now: no revival.
        assert!(c.revive(pc, &TWO).is_none());
        // The same bytes: the very same block, back in the lookup.
        assert_eq!(c.revive(pc, &ONE), Some((id, at)));
        assert_eq!(c.lookup(pc), Some((id, at)));
        assert!(c.overlaps(pc, GuestAddr(pc.get() + 1)));
        assert_eq!(c.stats.revived, 1);
        // A block translated without its bytes kept never revives.
        let pc2 = GuestAddr(0x40_2000);
        c.translate(pc2, &ONE).unwrap();
        c.invalidate(pc2, GuestAddr(pc2.get() + 1), false);
        assert!(c.revive(pc2, &ONE).is_none());
    }

    #[test]
    fn two_targets_with_one_home_both_stay_in_the_indirect_table() {
        let mut c = cache();
        // The same low 16 bits: the same home slot.
        let pcs = [GuestAddr(0x41_2340), GuestAddr(0x42_2340), GuestAddr(0x43_2340)];
        let at: Vec<CachePc> = pcs.iter().map(|&p| c.translate(p, &ONE).unwrap().1).collect();
        for (p, a) in pcs.iter().zip(&at) {
            c.ibl_insert(*p, *a);
        }
        // Each took the home slot and moved the one before it next door.
        let [home, next] = ibl_slots(pcs[0].get());
        let slot = |c: &mut CodeCache, i: usize| (c.ibl_pc(i), c.ibl.word(i));
        // The table holds each block's indirect entry, IBL_ENTRY_BACK bytes
        // before the entry that translate returned.
        let at: Vec<CachePc> = at.iter().map(|a| CachePc(a.get() - IBL_ENTRY_BACK)).collect();
        let entry = |a: CachePc| CachePc(a.get() + IBL_ENTRY_BACK);
        assert_eq!(slot(&mut c, home), (pcs[2].get(), at[2].get()));
        assert_eq!(slot(&mut c, next), (pcs[1].get(), at[1].get()));
        // Inserting the one at home again moves nothing.
        c.ibl_insert(pcs[2], entry(at[2]));
        assert_eq!(slot(&mut c, home), (pcs[2].get(), at[2].get()));
        assert_eq!(slot(&mut c, next), (pcs[1].get(), at[1].get()));
        // The one next door comes home, without a copy left behind.
        c.ibl_insert(pcs[1], entry(at[1]));
        assert_eq!(slot(&mut c, home), (pcs[1].get(), at[1].get()));
        assert_eq!(slot(&mut c, next), (pcs[2].get(), at[2].get()));
        // Dropping a block empties whichever slot holds it.
        c.invalidate(pcs[2], GuestAddr(pcs[2].get() + 1), false);
        assert_eq!(slot(&mut c, next), (IBL_EMPTY, c.ibl_empty));
        assert_eq!(slot(&mut c, home).0, pcs[1].get());
        // The slot holds the entry whose `mov rdx, -pc` names its pc.
        let e = slot(&mut c, home).1;
        let imm = u64::from_le_bytes(c.read(CachePc(e + 2), 8).try_into().unwrap());
        assert_eq!(imm.wrapping_neg(), pcs[1].get());
    }

    #[test]
    fn invalidation_unlinks_incoming_exits_and_clears_the_indirect_slot() {
        let mut c = cache();
        // jmp +0 (to the next instruction, 0x40_1002) ; then a block there.
        let a = GuestAddr(0x40_1000);
        let b = GuestAddr(0x40_1002);
        let (ida, _) = c.translate(a, &[0xEB, 0x00]).unwrap();
        let (idb, atb) = c.translate(b, &ONE).unwrap();
        let exit = ExitId(c.block(ida).exits.start);
        assert_eq!(c.exit_target(exit), Some(b));
        c.link(exit, atb);
        c.ibl_insert(b, atb);
        let slot = (b.get() & (crate::abi::IBL_SLOTS as u64 - 1)) as usize;
        assert_eq!(c.ibl.word(slot), atb.get() - IBL_ENTRY_BACK);
        c.invalidate(b, GuestAddr(b.get() + 1), false);
        assert!(c.exits[exit.0 as usize].linked.is_none());
        assert_eq!(c.ibl.word(slot), c.ibl_empty);
        assert!(c.lookup(b).is_none());
        assert!(c.lookup(a).is_some());
        let _ = idb;
    }
    #[test]
    fn changed_constant_memory_drops_only_the_blocks_that_read_it() {
        fn slot(at: GuestAddr) -> Option<u64> {
            (at.get() & !0xfff == 0x60_0000).then_some(0x40_3000)
        }
        let opts = TranslateOptions { read_constant: Some(slot), ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        // jmp [0x600010] at a, a plain block at b.
        let a = GuestAddr(0x40_1000);
        let b = GuestAddr(0x40_2000);
        c.translate_revivable(a, &[0xFF, 0x24, 0x25, 0x10, 0x00, 0x60, 0x00]).unwrap();
        c.translate_revivable(b, &ONE).unwrap();
        let exit = ExitId(c.block(c.lookup(a).unwrap().0).exits.start);
        assert_eq!(c.exit_target(exit), Some(GuestAddr(0x40_3000)));
        // Another page of data: nothing goes.
        assert!(!c.invalidate_data(GuestAddr(0x60_1000), GuestAddr(0x60_2000), false));
        assert!(c.lookup(a).is_some());
        // Its page: the block that read it goes and cannot be revived from
        // its bytes alone; the other stays.
        assert!(c.invalidate_data(GuestAddr(0x5f_f000), GuestAddr(0x60_0011), false));
        assert!(c.lookup(a).is_none());
        assert!(c.lookup(b).is_some());
        assert!(c.revive(a, &[0xFF, 0x24, 0x25, 0x10, 0x00, 0x60, 0x00]).is_none());
        // Once is enough: the page is forgotten with it.
        assert!(!c.invalidate_data(GuestAddr(0x60_0000), GuestAddr(0x60_1000), false));
    }

    /// The code at an inline-cache patch point: the imm64 of `mov rdx` (the
    /// negated target) and of the stub's `mov rcx` (the target).
    fn imm_at(c: &CodeCache, off: u32) -> u64 {
        let at = c.base().add(off as u64);
        u64::from_le_bytes(c.read(at, 8).try_into().unwrap())
    }

    /// The site's counter cell.
    fn counter(c: &mut CodeCache, site: ExitId) -> u64 {
        c.ic_counters.as_ref().expect("counters below 2 GiB").word(site.0 as usize)
    }

    /// Whether the `len` bytes at `off` are all no-ops.
    fn all_nops(c: &CodeCache, off: u32, len: u8) -> bool {
        let bytes = c.read(c.base().add(off as u64), len as usize);
        iced_x86::Decoder::new(64, bytes, iced_x86::DecoderOptions::NONE)
            .iter()
            .all(|i| i.mnemonic() == iced_x86::Mnemonic::Nop)
    }

    #[test]
    fn inline_cache_is_rearmed_for_its_current_targets_then_stops_counting() {
        let opts = TranslateOptions { ic_kinds: IC_KINDS, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        // call rax
        let (sid, _) = c.translate(GuestAddr(0x40_1000), &[0xFF, 0xD0]).unwrap();
        let ic: Vec<u32> = c.block(sid).exits.clone().filter(|&i| c.exits[i as usize].ic.is_some()).collect();
        let site = ExitId(ic[0]);
        let p = c.exits[ic[0] as usize].ic.unwrap();
        assert_ne!(p.count_at, 0, "a site with an inline cache counts");
        assert_eq!(c.read(c.base().add(p.count_at as u64), 3), [0x48, 0x89, 0xC8], "mov rax, rcx");
        assert_eq!(counter(&mut c, site), IC_REARM_PERIOD);
        let t: Vec<GuestAddr> = (0..16).map(|i| GuestAddr(0x40_2000 + 0x100 * i)).collect();
        let at: Vec<CachePc> = t.iter().map(|&g| c.translate(g, &ONE).unwrap().1).collect();
        for k in 0..IC_ENTRIES {
            c.ic_fill(site, t[k], at[k]);
        }
        let fall = |c: &CodeCache| c.read(c.base().add(p.fall_at as u64), 1)[0];
        assert_eq!(fall(&c), p.to_table);
        let targets = |c: &CodeCache| ic.iter().map(|&i| c.exits[i as usize].target).collect::<Vec<_>>();
        // The counter ran out at a new target: every entry emptied, the new
        // target fills the first, the others wait, misses go to the
        // dispatcher again until they are filled.
        for n in 1..=IC_REARM_MAX {
            let (g, a) = (t[IC_ENTRIES + n as usize], at[IC_ENTRIES + n as usize]);
            c.ic_fill(ExitId(site.0 | IC_REARM), g, a);
            assert_eq!(c.stats.ic_rearms, n as u64);
            assert_eq!(counter(&mut c, site), IC_REARM_PERIOD << n, "twice as long each time");
            let e0 = c.exits[ic[0] as usize];
            assert_eq!((e0.target, e0.linked), (g, c.by_cache_start(a)));
            assert_eq!(imm_at(&c, p.cmp_imm), g.get().wrapping_neg());
            for &i in &ic[1..] {
                let e = c.exits[i as usize];
                assert_eq!((e.target.get(), e.linked), (IC_EMPTY, None));
                let q = e.ic.unwrap();
                assert_eq!((imm_at(&c, q.cmp_imm), imm_at(&c, q.stub_imm)), (IC_EMPTY.wrapping_neg(), IC_EMPTY));
            }
            assert_eq!(Some(fall(&c)), p.to_fill);
            for k in 1..IC_ENTRIES {
                c.ic_fill(site, t[k], at[k]);
                assert_eq!(c.exits[ic[k] as usize].target, t[k]);
            }
            assert_eq!(fall(&c), p.to_table);
        }
        // Once more: no re-arming, and no-ops instead of the counter.
        let before = targets(&c);
        c.ic_fill(ExitId(site.0 | IC_REARM), t[15], at[15]);
        assert_eq!(c.stats.ic_rearms, IC_REARM_MAX as u64);
        assert_eq!(before, targets(&c));
        assert_eq!(counter(&mut c, site), IC_NEVER);
        assert!(all_nops(&c, p.count_at, p.count_len));
    }

    #[test]
    fn a_threaded_process_neither_counts_nor_rearms() {
        let opts = TranslateOptions { ic_kinds: IC_KINDS, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        let (sid, _) = c.translate(GuestAddr(0x40_1000), &[0xFF, 0xD0]).unwrap();
        let first = c.block(sid).exits.clone().find(|&i| c.exits[i as usize].ic.is_some()).unwrap();
        let p = c.exits[first as usize].ic.unwrap();
        c.go_threaded();
        // The counters made so far go; blocks made from now on have none.
        assert!(all_nops(&c, p.count_at, p.count_len));
        assert_eq!(counter(&mut c, ExitId(first)), IC_NEVER);
        let (sid2, _) = c.translate(GuestAddr(0x40_1100), &[0xFF, 0xD0]).unwrap();
        let first2 = c.block(sid2).exits.clone().find(|&i| c.exits[i as usize].ic.is_some()).unwrap();
        assert_eq!(c.exits[first2 as usize].ic.unwrap().count_at, 0);
        // A re-arm request (a counter written by the guest, say) changes nothing.
        let g = GuestAddr(0x40_2000);
        let a = c.translate(g, &ONE).unwrap().1;
        c.ic_fill(ExitId(first), g, a);
        c.ic_fill(ExitId(first | IC_REARM), GuestAddr(0x40_2100), a);
        assert_eq!(c.stats.ic_rearms, 0);
        assert_eq!(c.exits[first as usize].target, g);
    }

    #[test]
    fn with_threads_returns_go_straight_to_the_table() {
        use iced_x86::{Decoder, Instruction, Mnemonic, Register};
        let opts = TranslateOptions { ic_kinds: IC_KINDS, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        let site = |c: &CodeCache, b: BlockId| c.block(b).exits.clone().find_map(|i| c.exits[i as usize].ic);
        let at = |c: &CodeCache, to: u64| -> Instruction {
            let bytes = c.read(CachePc(to), 16).to_vec();
            Decoder::with_ip(64, &bytes, to, 0).decode()
        };
        // A return below 2 GiB (short compares) and one above (wide).
        let (short, _) = c.translate(GuestAddr(0x40_1000), &[0xC3]).unwrap();
        let (wide, _) = c.translate(GuestAddr(0x7f00_0000_1000), &[0xC3]).unwrap();
        let (call, _) = c.translate(GuestAddr(0x40_1100), &[0xFF, 0xD0]).unwrap();
        let (s, w, k) = (site(&c, short).unwrap(), site(&c, wide).unwrap(), site(&c, call).unwrap());
        assert_eq!((s.form, w.form, k.form), (IcForm::Short, IcForm::Wide, IcForm::Wide));
        assert_ne!(s.bypass_at, 0, "a return's cache can be bypassed");
        assert_ne!(w.bypass_at, 0, "a return's cache can be bypassed");
        assert_eq!(k.bypass_at, 0, "a call's cache stays");
        let first = |c: &CodeCache, p: IcPatch| at(c, c.base().add(p.bypass_at as u64).get());
        let (fs, fw) = (first(&c, s), first(&c, w));
        assert_eq!((fs.mnemonic(), fs.op1_kind()), (Mnemonic::Mov, iced_x86::OpKind::Memory), "mov rcx, [rsp]");
        assert_eq!((fw.mnemonic(), fw.op0_register()), (Mnemonic::Mov, Register::RDX), "mov rdx, -C");
        let call_before = c.read(c.base().add(k.cmp_imm as u64 - 2), 10).to_vec();
        c.go_threaded();
        // Each return's first compare is now a jump: the short one's to its
        // pop of the target, the wide one's to its table lookup, which
        // starts by spilling rax.
        for (p, landing) in [(s, (Mnemonic::Pop, Register::None)), (w, (Mnemonic::Mov, Register::RAX))] {
            let jmp = first(&c, p);
            assert_eq!(jmp.mnemonic(), Mnemonic::Jmp);
            let to = at(&c, jmp.near_branch_target());
            assert_eq!((to.mnemonic(), to.op1_register()), landing);
            // ... and misses no longer go to the dispatcher to fill.
            assert_eq!(c.read(c.base().add(p.fall_at as u64), 1)[0], p.to_table);
        }
        assert_eq!(c.read(c.base().add(k.cmp_imm as u64 - 2), 10), call_before, "the call's compare is unchanged");
        // Returns translated from now on have no inline cache.
        let (ret2, _) = c.translate(GuestAddr(0x40_1200), &[0xC3]).unwrap();
        assert!(site(&c, ret2).is_none());
    }

    #[test]
    fn a_short_return_cache_holds_targets_below_2_gib_and_leaves_the_rest_to_the_table() {
        let opts = TranslateOptions { ic_kinds: IC_KINDS, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        let (sid, _) = c.translate(GuestAddr(0x40_1000), &[0xC3]).unwrap();
        let ic: Vec<u32> = c.block(sid).exits.clone().filter(|&i| c.exits[i as usize].ic.is_some()).collect();
        assert_eq!(ic.len(), IC_ENTRIES);
        let imm32 = |c: &CodeCache, p: IcPatch| {
            assert_eq!(p.cmp_imm % 4, 0, "patched with one aligned store");
            i32::from_le_bytes(c.read(c.base().add(p.cmp_imm as u64), 4).try_into().unwrap())
        };
        let patch = |c: &CodeCache, k: usize| c.exits[ic[k] as usize].ic.unwrap();
        for &i in &ic {
            // Empty: matches only u64::MAX, which the stub names.
            let p = c.exits[i as usize].ic.unwrap();
            assert_eq!(imm32(&c, p), 1);
            assert_eq!(imm_at(&c, p.stub_imm), u64::MAX);
        }
        let low = GuestAddr(0x40_2000);
        let high = GuestAddr(0x7f00_0000_2000);
        let a_low = c.translate(low, &ONE).unwrap().1;
        let a_high = c.translate(high, &ONE).unwrap().1;
        c.ic_fill(ExitId(ic[0]), low, a_low);
        assert_eq!(imm32(&c, patch(&c, 0)), -0x40_2000);
        assert_eq!(imm_at(&c, patch(&c, 0).stub_imm), low.get());
        assert_eq!(c.exits[ic[0] as usize].linked, c.by_cache_start(a_low));
        // A target above 2 GiB uses up an entry and changes no code.
        c.ic_fill(ExitId(ic[0]), high, a_high);
        assert_eq!(imm32(&c, patch(&c, 1)), 1);
        assert_eq!(imm_at(&c, patch(&c, 1).stub_imm), u64::MAX);
        assert_eq!(c.exits[ic[1] as usize].linked, None);
        assert_eq!(c.stats.ic_fills, 1);
        let fall = |c: &CodeCache| c.read(c.base().add(patch(c, 0).fall_at as u64), 1)[0];
        assert_ne!(fall(&c), patch(&c, 0).to_table, "an entry is left to fill");
        c.ic_fill(ExitId(ic[0]), GuestAddr(0x7f00_0000_3000), a_high);
        assert_eq!(fall(&c), patch(&c, 0).to_table, "no entry left: to the table");
        // Re-arming empties all three, in the code's short form.
        c.ic_rearm(ExitId(ic[0]));
        for &i in &ic {
            let p = c.exits[i as usize].ic.unwrap();
            assert_eq!(imm32(&c, p), 1);
            assert_eq!(imm_at(&c, p.stub_imm), u64::MAX);
            assert_eq!(c.exits[i as usize].target.get(), IC_EMPTY);
        }
    }

    #[test]
    fn a_split_return_cache_holds_any_target_and_its_code_compares_what_the_record_says() {
        use iced_x86::{Decoder, Mnemonic, Register};
        let opts = TranslateOptions { ic_kinds: IC_KINDS, bmi2: true, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        let (sid, _) = c.translate(GuestAddr(0x7f00_0000_1000), &[0xC3]).unwrap();
        let ic: Vec<u32> = c.block(sid).exits.clone().filter(|&i| c.exits[i as usize].ic.is_some()).collect();
        let p = |c: &CodeCache, i: u32| c.exits[i as usize].ic.unwrap();
        // The entry's code, decoded: mov rcx, [rsp]; lea; rorx; lea; and
        // the leas' displacements as the record says.
        let code = |c: &CodeCache, i: u32| {
            let q = p(c, i);
            let start = c.base().add(q.cmp_imm as u64 - 7).get();
            let bytes = c.read(CachePc(start), 32).to_vec();
            let v: Vec<_> = Decoder::with_ip(64, &bytes, start, 0).into_iter().take(5).collect();
            assert_eq!(
                v.iter().map(|x| x.mnemonic()).collect::<Vec<_>>(),
                [Mnemonic::Mov, Mnemonic::Lea, Mnemonic::Rorx, Mnemonic::Lea, Mnemonic::Jrcxz]
            );
            assert_eq!((v[0].op0_register(), v[0].memory_base()), (Register::RCX, Register::RSP));
            assert_eq!(v[3].ip() + 3, c.base().add(q.cmp_hi as u64).get(), "cmp_hi is the second lea's");
            (v[1].memory_displacement64() as i64 as i32, v[3].memory_displacement64() as i64 as i32)
        };
        let matches = |(lo, hi): (i32, i32), t: u64| {
            t.wrapping_add(lo as i64 as u64).rotate_right(32).wrapping_add(hi as i64 as u64) == 0
        };
        for &i in &ic {
            assert_eq!(p(&c, i).form, IcForm::Split);
            assert_eq!(code(&c, i), split_compare(IC_EMPTY));
            assert!(matches(code(&c, i), 0x4000_0000_0000_0000), "empty matches its stub's address");
            assert_eq!(imm_at(&c, p(&c, i).stub_imm), 0x4000_0000_0000_0000);
        }
        // Any target fits, high or low, with a low half at or above 2^31.
        let targets = [GuestAddr(0x7f00_8000_2000), GuestAddr(0x40_2000), GuestAddr(0x5555_ffff_fff0)];
        let at: Vec<CachePc> = targets.iter().map(|&t| c.translate(t, &ONE).unwrap().1).collect();
        for (k, (&t, &a)) in targets.iter().zip(&at).enumerate() {
            c.ic_fill(ExitId(ic[0]), t, a);
            let d = code(&c, ic[k]);
            assert!(matches(d, t.get()), "entry {k} matches {t:?}");
            assert!(!matches(d, t.get() ^ 1 << 32) && !matches(d, t.get() + 8));
            assert_eq!(imm_at(&c, p(&c, ic[k]).stub_imm), t.get());
        }
        assert_eq!(c.stats.ic_fills, 3);
        c.ic_rearm(ExitId(ic[0]));
        for &i in &ic {
            assert_eq!(code(&c, i), split_compare(IC_EMPTY));
        }
    }

    #[test]
    fn a_split_compare_half_written_matches_no_canonical_address() {
        // Filled lo first, emptied hi first: in between, (new lo, empty hi).
        let (_, empty_hi) = split_compare(IC_EMPTY);
        for t in [0x40_1000u64, 0x7fff_ffff_f000, 0x5555_8000_0000, 0x7f12_7fff_fff8, 0] {
            let (lo, hi) = split_compare(t);
            let m = |lo: i32, hi: i32| {
                // The one address (lo, hi) matches.
                ((hi as i64).wrapping_neg() as u64).rotate_left(32).wrapping_sub(lo as i64 as u64)
            };
            assert_eq!(m(lo, hi), t);
            let between = m(lo, empty_hi);
            assert_ne!((between as i64) << 16 >> 16, between as i64, "{t:#x}: {between:#x} is canonical");
        }
    }

    #[test]
    fn inline_cache_fills_once_per_target_then_leaves_the_rest_to_the_table() {
        let opts = TranslateOptions { ic_kinds: IC_KINDS, ..TranslateOptions::default() };
        let mut c = CodeCache::new(1 << 20, None, None, opts).unwrap();
        // call rax
        let site_pc = GuestAddr(0x40_1000);
        let (sid, _) = c.translate(site_pc, &[0xFF, 0xD0]).unwrap();
        let exits = c.block(sid).exits.clone();
        let ic: Vec<u32> = exits.clone().filter(|&i| c.exits[i as usize].ic.is_some()).collect();
        assert_eq!(ic.len(), IC_ENTRIES, "one exit per entry");
        let site = ExitId(ic[0]);
        for &i in &ic {
            let x = c.exits[i as usize];
            let p = x.ic.unwrap();
            assert_eq!(x.target.get(), IC_EMPTY);
            assert_eq!((p.cmp_imm % 8, p.stub_imm % 8), (0, 0), "patched with single aligned stores");
            assert_eq!(imm_at(&c, p.cmp_imm), IC_EMPTY.wrapping_neg());
            assert_eq!(imm_at(&c, p.stub_imm), IC_EMPTY);
        }
        let t: Vec<GuestAddr> = (0..8).map(|i| GuestAddr(0x40_2000 + 0x100 * i)).collect();
        let at: Vec<CachePc> = t.iter().map(|&p| c.translate(p, &ONE).unwrap().1).collect();
        // The first target takes entry 0, again and again.
        c.ic_fill(site, t[0], at[0]);
        c.ic_fill(site, t[0], at[0]);
        let e0 = c.exits[ic[0] as usize];
        assert_eq!(e0.target, t[0]);
        assert_eq!(e0.linked, c.by_cache_start(at[0]));
        assert_eq!(imm_at(&c, e0.ic.unwrap().cmp_imm), t[0].get().wrapping_neg());
        assert_eq!(imm_at(&c, e0.ic.unwrap().stub_imm), t[0].get());
        assert_eq!(c.exits[ic[1] as usize].target.get(), IC_EMPTY);
        assert_eq!(c.stats.ic_fills, 1);
        // A miss reported for an exit that is no site changes nothing.
        c.ic_fill(ExitId(c.exits.len() as u32 + 7), t[1], at[1]);
        c.ic_fill(ExitId(ic[1]), t[1], at[1]);
        assert_eq!(c.stats.ic_fills, 1);
        let fall = |c: &CodeCache| c.read(c.base().add(e0.ic.unwrap().fall_at as u64), 1)[0];
        for k in 1..IC_ENTRIES {
            assert_ne!(fall(&c), e0.ic.unwrap().to_table, "an empty entry left: misses go to the dispatcher");
            c.ic_fill(site, t[k], at[k]);
            assert_eq!(c.exits[ic[k] as usize].target, t[k]);
        }
        assert_eq!(fall(&c), e0.ic.unwrap().to_table, "full: misses go to the table");
        // Full: another target changes nothing (a miss from the table
        // names no site; were one reported, it would find no empty entry).
        c.ic_fill(site, t[IC_ENTRIES], at[IC_ENTRIES]);
        assert_eq!(c.stats.ic_fills, IC_ENTRIES as u64);
        let targets: Vec<GuestAddr> = ic.iter().map(|&i| c.exits[i as usize].target).collect();
        assert_eq!(targets, t[..IC_ENTRIES]);
        // The block behind entry 0 goes: the entry's jump goes back to its
        // stub (which still names t[0]).
        c.invalidate(t[0], GuestAddr(t[0].get() + 1), false);
        assert!(c.exits[ic[0] as usize].linked.is_none());
        assert_eq!(c.exit_target(ExitId(ic[0])), Some(t[0]));
    }
}
