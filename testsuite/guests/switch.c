/* A bytecode interpreter whose dense switch compiles to a jump table
 * (indirect jumps), plus a computed-goto (threaded code) variant. */
#include <stdint.h>
#include <stdio.h>

#define NOPS 48
#define PROG_LEN 4096

static uint8_t prog[PROG_LEN];

__attribute__((noinline)) static uint64_t run_switch(long steps) {
    uint64_t r[4] = {1, 2, 3, 4};
    unsigned pc = 0;
    for (long s = 0; s < steps; s++) {
        uint8_t op = prog[pc];
        pc = (pc + 1) & (PROG_LEN - 1);
        switch (op) {
        case 0: r[0] += r[1]; break;
        case 1: r[1] ^= r[2] << 3; break;
        case 2: r[2] = r[2] * 2862933555777941757ULL + 3037000493ULL; break;
        case 3: r[3] -= r[0] >> 7; break;
        case 4: r[0] = (r[0] << 13) | (r[0] >> 51); break;
        case 5: r[1] += 0x9E3779B97F4A7C15ULL; break;
        case 6: r[2] ^= r[3]; break;
        case 7: r[3] = ~r[3]; break;
        case 8: r[0] *= 3; break;
        case 9: r[1] = r[1] / 3 + 17; break;
        case 10: r[2] += r[0] & 0xffff; break;
        case 11: r[3] |= r[1] & 0x1010101; break;
        case 12: r[0] &= ~(r[2] & 0xff00); break;
        case 13: r[1] -= r[3]; break;
        case 14: r[2] = (r[2] >> 1) | (r[2] << 63); break;
        case 15: r[3] += r[2] % 1009; break;
        case 16: r[0] ^= 0xdeadbeef; break;
        case 17: r[1] *= r[1] | 1; break;
        case 18: r[2] -= 12345; break;
        case 19: r[3] = r[3] * 5 + 1; break;
        case 20: r[0] += r[3] >> 11; break;
        case 21: r[1] ^= r[0] >> 29; break;
        case 22: r[2] = r[1] + r[3]; break;
        case 23: r[3] ^= r[3] << 21; break;
        case 24: r[0] -= r[2]; break;
        case 25: r[1] = (r[1] << 7) ^ r[2]; break;
        case 26: r[2] += 777; break;
        case 27: r[3] -= r[1] & 0xff; break;
        case 28: r[0] = r[0] % 1000003 + r[1]; break;
        case 29: r[1] += r[2] >> 3; break;
        case 30: r[2] ^= 0x5555555555555555ULL; break;
        case 31: r[3] *= 7; break;
        case 32: { uint64_t t = r[0]; r[0] = r[1]; r[1] = t; } break;
        case 33: { uint64_t t = r[2]; r[2] = r[3]; r[3] = t; } break;
        case 34: r[0] += __builtin_popcountll(r[3]); break;
        case 35: r[1] -= (uint64_t)__builtin_clzll(r[2] | 1); break;
        case 36: r[2] += (uint64_t)__builtin_ctzll(r[0] | 0x8000); break;
        case 37: r[3] = r[3] > r[0] ? r[3] - r[0] : r[0] - r[3]; break;
        case 38: r[0] = (int64_t)r[0] >> 3; break;
        case 39: r[1] = r[1] < r[2] ? r[1] : r[2]; break;
        case 40: r[2] = __builtin_bswap64(r[2]); break;
        case 41: r[3] += (uint32_t)r[1] * (uint64_t)(uint32_t)r[2]; break;
        case 42: r[0] ^= r[1] ^ r[2] ^ r[3]; break;
        case 43: r[1] += 42; break;
        case 44: r[2] = r[2] * 33 ^ r[0]; break;
        case 45: r[3] = (r[3] >> 17) ^ r[3]; break;
        case 46: pc = (pc + (unsigned)(r[0] & 15)) & (PROG_LEN - 1); break;
        case 47: r[0] = r[0] + r[1] + r[2] + r[3]; break;
        default: r[0]++; break;
        }
    }
    return r[0] ^ (r[1] * 3) ^ (r[2] * 5) ^ (r[3] * 7);
}

__attribute__((noinline)) static uint64_t run_threaded(long steps) {
    static void *labels[8] = {&&l0, &&l1, &&l2, &&l3, &&l4, &&l5, &&l6, &&l7};
    uint64_t a = 1, b = 2;
    unsigned pc = 0;
    long s = steps;
#define NEXT do { if (--s < 0) goto done; pc = (pc + 1) & (PROG_LEN - 1); goto *labels[prog[pc] & 7]; } while (0)
    NEXT;
l0: a += b; NEXT;
l1: b ^= a << 5; NEXT;
l2: a = a * 6364136223846793005ULL + 1; NEXT;
l3: b += a >> 9; NEXT;
l4: a ^= b; NEXT;
l5: b = (b << 1) | (b >> 63); NEXT;
l6: a -= 99; NEXT;
l7: b *= 9; NEXT;
done:
    return a ^ b;
#undef NEXT
}

static const char *describe(unsigned x) {
    switch (x % 12) {
    case 0: return "zero"; case 1: return "one"; case 2: return "two"; case 3: return "three";
    case 4: return "four"; case 5: return "five"; case 6: return "six"; case 7: return "seven";
    case 8: return "eight"; case 9: return "nine"; case 10: return "ten"; default: return "eleven";
    }
}

int main(void) {
    uint32_t x = 12345;
    for (int i = 0; i < PROG_LEN; i++) {
        x = x * 1103515245u + 12345u;
        prog[i] = (uint8_t)((x >> 16) % (NOPS + 2)); /* includes a few default-case ops */
    }
    for (long steps = 1; steps <= 3000000; steps *= 10)
        printf("switch %8ld steps -> %016llx\n", steps, (unsigned long long)run_switch(steps));
    for (long steps = 1; steps <= 3000000; steps *= 10)
        printf("threaded %8ld steps -> %016llx\n", steps, (unsigned long long)run_threaded(steps));
    unsigned len = 0;
    for (unsigned i = 0; i < 100000; i++) len += (unsigned)__builtin_strlen(describe(i * 7));
    printf("describe total length %u, sample %s %s\n", len, describe(5), describe(23));
    return 0;
}
