/* Descriptors of many kinds, each named by one getsockname or fstat and
 * one close, to compare bt-run's -yy trace lines with strace's: TCP
 * (listening, connected both ways, unbound), UDP (unbound, connected),
 * UDP over IPv6, unix sockets (a stream pair, a bound datagram socket, an
 * abstract name), netlink, /dev/null and a pidfd. Run in an empty
 * directory: it binds "sl_sockets.sock" there. Prints what worked, so a
 * kind the machine lacks shows in the output of both runs alike. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* struct sockaddr_nl (musl's headers have no <linux/netlink.h>). */
struct nl_addr {
    unsigned short nl_family, nl_pad;
    unsigned nl_pid, nl_groups;
};

static void name(const char *what, int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    printf("%s: %s\n", what, fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 ? "ok" : "failed");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* TCP on the loopback. */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) ||
        getsockname(l, (struct sockaddr *)&a, &alen)) {
        printf("tcp: failed\n");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    name("tcp unbound", c);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        printf("connect: failed\n");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    name("tcp listening", l);
    name("tcp client", c);
    name("tcp server", s);
    if (write(c, "x", 1) != 1 || read(s, (char[1]){0}, 1) != 1) printf("tcp data: failed\n");
    close(s);
    close(c);
    close(l);

    /* UDP: unbound, then connected. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    name("udp unbound", u);
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(u, (struct sockaddr *)&d, sizeof d) == 0) name("udp connected", u);
    close(u);

    /* UDP over IPv6, where the machine has it. */
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (u6 >= 0 && bind(u6, (struct sockaddr *)&a6, sizeof a6) == 0) name("udp6", u6);
    else printf("udp6: none\n");
    if (u6 >= 0) close(u6);

    /* Unix sockets: a connected pair, a bound datagram socket, an abstract
     * name. */
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0) {
        name("pair 0", sp[0]);
        name("pair 1", sp[1]);
        close(sp[0]);
        close(sp[1]);
    }
    int ud = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strcpy(un.sun_path, "sl_sockets.sock");
    if (bind(ud, (struct sockaddr *)&un, sizeof un) == 0) name("unix bound", ud);
    unlink("sl_sockets.sock");
    close(ud);
    int ua = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    snprintf(ab.sun_path + 1, sizeof ab.sun_path - 1, "sl_sockets.%d", (int)getpid() + 100000);
    socklen_t ablen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ab.sun_path + 1);
    if (bind(ua, (struct sockaddr *)&ab, ablen) == 0 && listen(ua, 1) == 0) printf("abstract: ok\n");
    close(ua);

    /* Netlink: unbound, then bound by the kernel's choice of port. */
    int nl = socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
    name("netlink", nl);
    struct nl_addr sn = {.nl_family = AF_NETLINK};
    if (nl >= 0 && bind(nl, (struct sockaddr *)&sn, sizeof sn) == 0) name("netlink bound", nl);
    close(nl);

    /* A device and a pidfd. */
    int dn = open("/dev/null", O_RDONLY);
    struct stat st;
    printf("dev null: %s\n", fstat(dn, &st) == 0 ? "ok" : "failed");
    close(dn);
    int pf = (int)syscall(434 /* pidfd_open */, getpid(), 0);
    printf("pidfd: %s\n", pf >= 0 ? "ok" : "none");
    if (pf >= 0) close(pf);
    return 0;
}
