// Benchmark: C++ virtual calls through a base-class pointer, several
// classes mixed in an array (as in object-oriented code: the call site is
// polymorphic). Usage: vcall [N] (default 100000000 calls). Prints a sum.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

struct Shape {
    virtual ~Shape() = default;
    virtual long area(long k) const = 0;
};
struct Square : Shape {
    long s;
    explicit Square(long s) : s(s) {}
    long area(long k) const override { return s * s + k; }
};
struct Rect : Shape {
    long w, h;
    Rect(long w, long h) : w(w), h(h) {}
    long area(long k) const override { return w * h - k; }
};
struct Tri : Shape {
    long b, h;
    Tri(long b, long h) : b(b), h(h) {}
    long area(long k) const override { return b * h / 2 + (k & 3); }
};

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000000;
    std::vector<std::unique_ptr<Shape>> v;
    for (int i = 0; i < 64; i++) {
        switch ((i * 7) % 3) {
        case 0: v.emplace_back(new Square(i)); break;
        case 1: v.emplace_back(new Rect(i, i + 1)); break;
        default: v.emplace_back(new Tri(i, i + 2)); break;
        }
    }
    long s = 0;
    for (long i = 0; i < n; i++) s += v[i & 63]->area(i);
    std::printf("%ld\n", s);
    return 0;
}
