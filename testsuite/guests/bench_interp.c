/* Benchmark: a bytecode interpreter, as language VMs dispatch: a switch in
 * one loop (`switch`) or threaded code through computed gotos (`goto`).
 * Usage: bench_interp switch|goto [N] (default 20000000 iterations of the
 * program's loop). Prints the result, the same for both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PUSH, ADD, MUL, MOD, DUP, SWAP, DROP, LOAD, STORE, DEC, JNZ, HALT };

/* acc = 0; for (i = n; i; i--) acc = (acc + i * i) % 1000003 */
static const long prog[] = {
    PUSH, 0, STORE, 1,          /* acc = 0 */
    LOAD, 0,                    /* loop: i */
    DUP, MUL,                   /* i*i */
    LOAD, 1, ADD,               /* + acc */
    PUSH, 1000003, MOD,         /* % m */
    STORE, 1,                   /* acc = */
    LOAD, 0, DEC, DUP, STORE, 0, /* i-- */
    JNZ, 4,
    LOAD, 1, HALT,
};

static long run_switch(long n) {
    long st[16], var[2] = {n, 0};
    int sp = 0;
    for (long pc = 0;;) {
        switch (prog[pc]) {
        case PUSH: st[sp++] = prog[pc + 1]; pc += 2; break;
        case ADD: sp--; st[sp - 1] += st[sp]; pc++; break;
        case MUL: sp--; st[sp - 1] *= st[sp]; pc++; break;
        case MOD: sp--; st[sp - 1] %= st[sp]; pc++; break;
        case DUP: st[sp] = st[sp - 1]; sp++; pc++; break;
        case SWAP: { long t = st[sp - 1]; st[sp - 1] = st[sp - 2]; st[sp - 2] = t; pc++; break; }
        case DROP: sp--; pc++; break;
        case LOAD: st[sp++] = var[prog[pc + 1]]; pc += 2; break;
        case STORE: var[prog[pc + 1]] = st[--sp]; pc += 2; break;
        case DEC: st[sp - 1]--; pc++; break;
        case JNZ: pc = st[--sp] ? prog[pc + 1] : pc + 2; break;
        case HALT: return st[sp - 1];
        default: abort();
        }
    }
}

static long run_goto(long n) {
    static void *const op[] = {&&push, &&add, &&mul, &&mod, &&dup, &&swap, &&drop, &&load, &&store, &&dec, &&jnz, &&halt};
    long st[16], var[2] = {n, 0};
    int sp = 0;
    long pc = 0;
#define NEXT goto *op[prog[pc]]
    NEXT;
push: st[sp++] = prog[pc + 1]; pc += 2; NEXT;
add: sp--; st[sp - 1] += st[sp]; pc++; NEXT;
mul: sp--; st[sp - 1] *= st[sp]; pc++; NEXT;
mod: sp--; st[sp - 1] %= st[sp]; pc++; NEXT;
dup: st[sp] = st[sp - 1]; sp++; pc++; NEXT;
swap: { long t = st[sp - 1]; st[sp - 1] = st[sp - 2]; st[sp - 2] = t; pc++; NEXT; }
drop: sp--; pc++; NEXT;
load: st[sp++] = var[prog[pc + 1]]; pc += 2; NEXT;
store: var[prog[pc + 1]] = st[--sp]; pc += 2; NEXT;
dec: st[sp - 1]--; pc++; NEXT;
jnz: pc = st[--sp] ? prog[pc + 1] : pc + 2; NEXT;
halt: return st[sp - 1];
#undef NEXT
}

int main(int argc, char **argv) {
    int use_goto = argc > 1 && !strcmp(argv[1], "goto");
    long n = argc > 2 ? atol(argv[2]) : 20000000;
    printf("%ld\n", use_goto ? run_goto(n) : run_switch(n));
    return 0;
}
