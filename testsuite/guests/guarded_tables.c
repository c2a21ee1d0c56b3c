/*
 * Jump tables whose base comes in a register and whose index is unbounded:
 * bt-run translates them with guesses (the base's value when the block was
 * first entered, an index range from the table) that it checks at run
 * time. Calls alternate between tables and reach entries beyond the
 * guessed range, so every check fails some of the time; each result is
 * what the guest's own load and jump give.
 */
#include <stdio.h>

long dispatch(const void *const *table, long index, long x);

__asm__(
    ".text\n"
    ".globl dispatch\n"
    "dispatch:\n"
    "    mov %rsi, %rax\n"            /* the index, written in the block */
    "    mov (%rdi,%rax,8), %rcx\n"   /* the table's base: the block's entry rdi */
    "    mov %edx, %eax\n"            /* a move that overwrites the index */
    "    jmp *%rcx\n"
    "t0: lea 1(%rax), %rax\n    ret\n"
    "t1: lea 10(%rax), %rax\n    ret\n"
    "t2: imul $3, %rax, %rax\n    ret\n"
    "t3: neg %rax\n    ret\n"
    "t4: lea -7(%rax), %rax\n    ret\n"
    "far_away: ud2\n"
    /* The PIC shape: 32-bit offsets from the table, added to its base. */
    ".globl rdispatch\n"
    "rdispatch:\n"
    "    mov %rsi, %rax\n"
    "    movslq (%rdi,%rax,4), %rcx\n"
    "    mov %edx, %eax\n"
    "    add %rdi, %rcx\n"
    "    jmp *%rcx\n"
    ".section .rodata\n"
    ".balign 4\n"
    ".globl rtab_a, rtab_b, rtab_c\n"
    "rtab_a: .long t0 - rtab_a, t1 - rtab_a, t2 - rtab_a\n"
    "rtab_b: .long t3 - rtab_b, t4 - rtab_b, t0 - rtab_b, t1 - rtab_b\n"
    "rtab_c: .long t2 - rtab_c, t1 - rtab_c, 0x40000000, t4 - rtab_c, t3 - rtab_c, t0 - rtab_c\n"
    ".section .data.rel.ro,\"aw\"\n"
    ".balign 8\n"
    ".globl table_a, table_b, table_c\n"
    "table_a: .quad t0, t1, t2\n"
    "table_b: .quad t3, t4, t0, t1\n"
    "table_c: .quad t2, t2, t1, far_away + 0x400000, t4, t3, t1, t0, t2, t4\n"
    ".text\n");

extern const void *const table_a[], *const table_b[], *const table_c[];
extern const int rtab_a[], rtab_b[], rtab_c[];
long rdispatch(const int *table, long index, long x);

int main(void) {
    /* First through table_c: the guesses are its address and, from its
     * first three entries (the fourth is no near address), indexes 0..3. */
    long sum = dispatch(table_c, 0, 1);
    /* Likewise for the PIC table: guessed as rtab_c, indexes 0..1. */
    sum += rdispatch(rtab_c, 1, 2);
    for (long round = 0; round < 200000; round++) {
        long x = round & 0xffff;
        switch (round % 5) {
        case 0: sum += dispatch(table_a, round % 3, x); break;
        case 1: sum += dispatch(table_b, round % 4, x); break;
        case 2: sum ^= dispatch(table_a, (round >> 3) % 7, x); break; /* reads into table_b */
        case 3: sum += dispatch(table_c, round % 3, x); break;
        default: {
            /* Past table_c's entry 3 (not a near address): 4..9. */
            long i = 4 + round % 6;
            sum -= dispatch(table_c, i, x);
        }
        }
        switch (round % 4) {
        case 0: sum += rdispatch(rtab_a, round % 3, x); break;
        case 1: sum ^= rdispatch(rtab_b, round % 4, x); break;
        case 2: sum += rdispatch(rtab_c, round % 2, x); break;
        default: sum -= rdispatch(rtab_c, 3 + round % 3, x); /* past the guess */
        }
    }
    printf("%ld\n", sum);
    for (long i = 0; i < 10; i++)
        if (i != 3)
            printf("table_c[%ld](5) = %ld\n", i, dispatch(table_c, i, 5));
    for (long i = 0; i < 6; i++)
        if (i != 2)
            printf("rtab_c[%ld](5) = %ld\n", i, rdispatch(rtab_c, i, 5));
    return 0;
}
