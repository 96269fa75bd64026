"""Build script of ``ingest._fanout``: the per-listener loop of the SFU, in C (cffi, API mode).

Built by the project's install (``setup.py`` names it in ``cffi_modules``;
an editable install puts the module next to this file), or by hand for
development::

    .venv/bin/python -m ingest.fanout_build      # writes ingest/_fanout*.so in place

Why C: per listener packet the Python loop (a closure call, a slice copy,
the cffi call into libsrtp, ``socket.sendto``) cost more than the
encryption and the syscall it drives. Here one call does, for every target
of a slot: copy the plain RTP packet into a scratch buffer, protect it with
the target's libsrtp session, and ``sendto`` the target's socket without
blocking. It stops at the first target that needs Python (a full socket
buffer, a failed protect or send) and says which; the caller handles that
one and calls again from the next.

libsrtp is not linked here: pylibsrtp carries it statically, and the one
function needed, ``srtp_protect``, is handed over as a function pointer
taken from pylibsrtp's own module (``fanout_init``), so both paths run the
very same libsrtp on the very same session state. Its signature is that of
libsrtp 2 (pylibsrtp 1.0): ``srtp_err_status_t srtp_protect(srtp_t, void *, int *)``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cffi import FFI

CDEF = """
typedef struct {
    void *session;
    int fd;
    int addrlen;
    ...;
} fanout_target;

#define FANOUT_SCRATCH ...
#define FANOUT_MAX_PACKET ...
#define FANOUT_OK ...
#define FANOUT_AGAIN ...
#define FANOUT_PROTECT_FAILED ...
#define FANOUT_SEND_FAILED ...

void fanout_init(uintptr_t protect);
int fanout_set_address(fanout_target *t, int family, const unsigned char *ip, int ip_len, int port,
                       uint32_t flowinfo, uint32_t scope_id);
int fanout_send(const fanout_target *targets, int start, int count,
                const unsigned char *packet, int length,
                unsigned char *scratch, int *status, int *protected_length);
"""

SOURCE = r"""
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* pylibsrtp's buffer, and the room libsrtp may add to a packet (SRTP_MAX_TRAILER_LEN) */
#define FANOUT_SCRATCH 1500
#define FANOUT_MAX_PACKET (FANOUT_SCRATCH - 144)

#define FANOUT_OK 0
#define FANOUT_AGAIN 1            /* socket buffer full: the protected bytes are in scratch */
#define FANOUT_PROTECT_FAILED 2   /* libsrtp refused, or the packet is too long: nothing was sent */
#define FANOUT_SEND_FAILED 3      /* sendto failed otherwise: nothing was sent */

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr); 0 is ok. */
typedef int (*fanout_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);
static fanout_protect_fn fanout_protect = NULL;

typedef struct {
    void *session;      /* srtp_t of the listener's outbound SRTP session */
    int fd;             /* the fanout's own dup of the listener's ICE socket */
    int addrlen;
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
} fanout_target;

static void fanout_init(uintptr_t protect)
{
    fanout_protect = (fanout_protect_fn)protect;
}

static int fanout_set_address(fanout_target *t, int family, const unsigned char *ip, int ip_len, int port,
                              uint32_t flowinfo, uint32_t scope_id)
{
    memset(&t->addr, 0, sizeof(t->addr));
    if (port < 0 || port > 65535)
        return -1;
    if (family == AF_INET && ip_len == 4) {
        t->addr.v4.sin_family = AF_INET;
        t->addr.v4.sin_port = htons((uint16_t)port);
        memcpy(&t->addr.v4.sin_addr, ip, 4);
        t->addrlen = sizeof(struct sockaddr_in);
        return 0;
    }
    if (family == AF_INET6 && ip_len == 16) {
        t->addr.v6.sin6_family = AF_INET6;
        t->addr.v6.sin6_port = htons((uint16_t)port);
        t->addr.v6.sin6_flowinfo = htonl(flowinfo);
        memcpy(&t->addr.v6.sin6_addr, ip, 16);
        t->addr.v6.sin6_scope_id = scope_id;
        t->addrlen = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

static int fanout_send(const fanout_target *targets, int start, int count,
                       const unsigned char *packet, int length,
                       unsigned char *scratch, int *status, int *protected_length)
{
    if (length < 0 || length > FANOUT_MAX_PACKET) {
        *status = FANOUT_PROTECT_FAILED;
        return start;
    }
    for (int i = start; i < count; i++) {
        const fanout_target *t = &targets[i];
        int n = length;
        memcpy(scratch, packet, (size_t)length);
        if (fanout_protect(t->session, scratch, &n) != 0) {
            *status = FANOUT_PROTECT_FAILED;
            return i;
        }
        ssize_t sent;
        do {
            sent = sendto(t->fd, scratch, (size_t)n, MSG_DONTWAIT,
                          &t->addr.sa, (socklen_t)t->addrlen);
        } while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            *status = (errno == EAGAIN || errno == EWOULDBLOCK) ? FANOUT_AGAIN : FANOUT_SEND_FAILED;
            *protected_length = n;
            return i;
        }
    }
    *status = FANOUT_OK;
    return count;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
# optional: without a C compiler the install goes on, and the SFU uses the Python loop (ingest/fanout.py).
ffibuilder.set_source("ingest._fanout", SOURCE, extra_compile_args=["-O2"], optional=True)


def build_in_place() -> Path:
    """Compile the module next to this file (what an editable install does), for development.

    Compiled in a scratch directory (cffi runs setuptools there, which must not
    read the project's own pyproject.toml), then moved into the package.
    """
    with tempfile.TemporaryDirectory(prefix="fanout-build-") as tmp:
        built = Path(ffibuilder.compile(tmpdir=tmp, verbose=False))
        target = Path(__file__).resolve().parent / built.name
        shutil.move(built, target)
    return target


if __name__ == "__main__":
    print(build_in_place())
