/* stdin -> stdout filter: numbers lines, rot13s letters, reverses words;
 * byte statistics go to stderr; exit status 0. Handles arbitrary binary input. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char rot13(char c) {
    if (c >= 'a' && c <= 'z') return (char)('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z') return (char)('A' + (c - 'A' + 13) % 26);
    return c;
}

int main(void) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) return 3;
    ssize_t n;
    while ((n = read(0, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) return 3;
        }
    }
    if (n < 0) { perror("read"); return 4; }
    unsigned long hist[256] = {0};
    uint64_t h = 1469598103934665603ULL;
    size_t lines = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len) { hist[(unsigned char)buf[i]]++; h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL; }
        if (i == len || buf[i] == '\n') {
            if (i == len && start == len) break;
            lines++;
            printf("%6zu ", lines);
            /* reverse the order of space-separated words, rot13 each */
            size_t end = i;
            while (end > start) {
                size_t w = end;
                while (w > start && buf[w - 1] != ' ') w--;
                for (size_t k = w; k < end; k++) putchar(isprint((unsigned char)buf[k]) ? rot13(buf[k]) : '.');
                if (w > start) putchar(' ');
                end = w > start ? w - 1 : start;
            }
            putchar('\n');
            start = i + 1;
        }
    }
    size_t distinct = 0;
    for (int i = 0; i < 256; i++) distinct += hist[i] != 0;
    fprintf(stderr, "bytes %zu lines %zu distinct %zu fnv %016llx\n", len, lines, distinct, (unsigned long long)h);
    free(buf);
    return 0;
}
