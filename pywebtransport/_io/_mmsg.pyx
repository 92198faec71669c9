# cython: language_level=3
"""Batched UDP for Linux: ``recvmmsg``/``sendmmsg`` and UDP GSO (``UDP_SEGMENT``).

One system call reads up to ``batch`` datagrams, one sends a whole transmit pass, and runs
of equal-size datagrams to one address leave as a single GSO message that the kernel cuts
into segments. Off Linux the module still compiles (``BATCHED`` is False) so that a build
of every ``.pyx`` never fails; the endpoint then uses the pure twin ``_mmsg_py``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport strerror

cdef extern from *:
    """
    #include <errno.h>
    #include <stdlib.h>
    #include <string.h>
    #ifndef EWOULDBLOCK
    #define EWOULDBLOCK EAGAIN
    #endif
    #define PWT_MAX_SEGMENTS 64
    #define PWT_MAX_GSO_BYTES 64000

    #if defined(__linux__)
    #define PWT_BATCHED 1
    #include <stdint.h>
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <netinet/in.h>
    #include <arpa/inet.h>
    #ifndef SOL_UDP
    #define SOL_UDP 17
    #endif
    #ifndef UDP_SEGMENT
    #define UDP_SEGMENT 103
    #endif
    #define PWT_CONTROL_SPACE CMSG_SPACE(sizeof(uint16_t))

    typedef struct {
        int capacity;                     /* messages per system call */
        size_t slot;                      /* bytes per receive buffer */
        char *buffers;                    /* capacity * slot, for receiving */
        struct mmsghdr *msgs;             /* capacity */
        struct iovec *iovs;               /* capacity * PWT_MAX_SEGMENTS */
        struct sockaddr_storage *addrs;   /* capacity */
        char *controls;                   /* capacity * PWT_CONTROL_SPACE */
    } pwt_batch;

    static void pwt_batch_free(pwt_batch *b) {
        if (b == NULL) return;
        free(b->buffers); free(b->msgs); free(b->iovs); free(b->addrs); free(b->controls);
        free(b);
    }

    static pwt_batch *pwt_batch_new(int capacity, size_t slot) {
        pwt_batch *b = (pwt_batch *)calloc(1, sizeof(pwt_batch));
        if (b == NULL) return NULL;
        b->capacity = capacity;
        b->slot = slot;
        b->buffers = (char *)malloc((size_t)capacity * slot);
        b->msgs = (struct mmsghdr *)calloc((size_t)capacity, sizeof(struct mmsghdr));
        b->iovs = (struct iovec *)calloc((size_t)capacity * PWT_MAX_SEGMENTS, sizeof(struct iovec));
        b->addrs = (struct sockaddr_storage *)calloc((size_t)capacity, sizeof(struct sockaddr_storage));
        b->controls = (char *)calloc((size_t)capacity, PWT_CONTROL_SPACE);
        if (!b->buffers || !b->msgs || !b->iovs || !b->addrs || !b->controls) {
            pwt_batch_free(b);
            return NULL;
        }
        return b;
    }

    /* Larger receive slots, after a datagram did not fit: 0 on success. */
    static int pwt_batch_grow(pwt_batch *b, size_t slot) {
        char *buffers = (char *)malloc((size_t)b->capacity * slot);
        if (buffers == NULL) return -1;
        free(b->buffers);
        b->buffers = buffers;
        b->slot = slot;
        return 0;
    }

    /* Read up to capacity datagrams: their count, or -errno. */
    static int pwt_recv(pwt_batch *b, int fd) {
        int i, n;
        for (i = 0; i < b->capacity; i++) {
            struct msghdr *h = &b->msgs[i].msg_hdr;
            b->iovs[i].iov_base = b->buffers + (size_t)i * b->slot;
            b->iovs[i].iov_len = b->slot;
            memset(h, 0, sizeof(*h));
            h->msg_name = &b->addrs[i];
            h->msg_namelen = sizeof(struct sockaddr_storage);
            h->msg_iov = &b->iovs[i];
            h->msg_iovlen = 1;
        }
        do {
            n = recvmmsg(fd, b->msgs, (unsigned int)b->capacity, MSG_DONTWAIT, NULL);
        } while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
    }

    static const char *pwt_recv_data(pwt_batch *b, int i) { return b->buffers + (size_t)i * b->slot; }
    static size_t pwt_recv_len(pwt_batch *b, int i) { return b->msgs[i].msg_len; }
    static int pwt_recv_truncated(pwt_batch *b, int i) { return (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }

    static int pwt_same_addr(pwt_batch *b, int i, int j) {
        socklen_t n = b->msgs[i].msg_hdr.msg_namelen;
        return n == b->msgs[j].msg_hdr.msg_namelen && memcmp(&b->addrs[i], &b->addrs[j], n) == 0;
    }

    /* The sender of datagram i as text and port: 0, or -1 for a family other than IP. */
    static int pwt_recv_addr(pwt_batch *b, int i, char *host, size_t hostlen, int *port) {
        struct sockaddr_storage *a = &b->addrs[i];
        if (a->ss_family == AF_INET) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)a;
            if (inet_ntop(AF_INET, &v4->sin_addr, host, (socklen_t)hostlen) == NULL) return -1;
            *port = ntohs(v4->sin_port);
            return 0;
        }
        if (a->ss_family == AF_INET6) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
            if (inet_ntop(AF_INET6, &v6->sin6_addr, host, (socklen_t)hostlen) == NULL) return -1;
            *port = ntohs(v6->sin6_port);
            return 0;
        }
        return -1;
    }

    /* Destination of message m from a numeric host of the socket's family: 0, or -1 when it
       is anything else (a name, a scoped address), which the caller sends with sendto. */
    static int pwt_send_addr(pwt_batch *b, int m, int family, const char *host, int port) {
        struct sockaddr_storage *a = &b->addrs[m];
        memset(a, 0, sizeof(*a));
        if (family == AF_INET) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)a;
            if (inet_pton(AF_INET, host, &v4->sin_addr) != 1) return -1;
            v4->sin_family = AF_INET;
            v4->sin_port = htons((uint16_t)port);
            b->msgs[m].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
            return 0;
        }
        if (family == AF_INET6) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
            if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) return -1;
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            b->msgs[m].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
            return 0;
        }
        return -1;
    }

    static void pwt_copy_addr(pwt_batch *b, int m, int from) {
        memcpy(&b->addrs[m], &b->addrs[from], sizeof(struct sockaddr_storage));
        b->msgs[m].msg_hdr.msg_namelen = b->msgs[from].msg_hdr.msg_namelen;
    }

    static void pwt_set_iov(pwt_batch *b, int k, const char *data, size_t len) {
        b->iovs[k].iov_base = (void *)data;
        b->iovs[k].iov_len = len;
    }

    /* Message m sends iovecs [first, first + count); segment > 0 asks the kernel to cut it. */
    static void pwt_set_msg(pwt_batch *b, int m, int first, int count, int segment) {
        struct msghdr *h = &b->msgs[m].msg_hdr;
        socklen_t namelen = h->msg_namelen;
        memset(h, 0, sizeof(*h));
        h->msg_name = &b->addrs[m];
        h->msg_namelen = namelen;
        h->msg_iov = &b->iovs[first];
        h->msg_iovlen = (size_t)count;
        if (segment > 0) {
            struct cmsghdr *c;
            uint16_t size = (uint16_t)segment;
            h->msg_control = b->controls + (size_t)m * PWT_CONTROL_SPACE;
            h->msg_controllen = PWT_CONTROL_SPACE;
            memset(h->msg_control, 0, PWT_CONTROL_SPACE);
            c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            memcpy(CMSG_DATA(c), &size, sizeof(size));
        }
    }

    /* Send messages [start, start + count): how many left, or -errno for the first. */
    static int pwt_sendmmsg(pwt_batch *b, int fd, int start, int count) {
        int n;
        do {
            n = sendmmsg(fd, &b->msgs[start], (unsigned int)count, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
    }

    /* Whether this kernel knows UDP_SEGMENT (Linux 4.18+): a harmless setsockopt. */
    static int pwt_probe_gso(int fd) {
        int zero = 0;
        return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
    }

    #else  /* not Linux: nothing batches; the pure twin is used */
    #define PWT_BATCHED 0
    typedef struct { int capacity; } pwt_batch;
    static void pwt_batch_free(pwt_batch *b) { free(b); }
    static pwt_batch *pwt_batch_new(int capacity, size_t slot) { (void)capacity; (void)slot; return NULL; }
    static int pwt_batch_grow(pwt_batch *b, size_t slot) { (void)b; (void)slot; return -1; }
    static int pwt_recv(pwt_batch *b, int fd) { (void)b; (void)fd; return -ENOSYS; }
    static const char *pwt_recv_data(pwt_batch *b, int i) { (void)b; (void)i; return NULL; }
    static size_t pwt_recv_len(pwt_batch *b, int i) { (void)b; (void)i; return 0; }
    static int pwt_recv_truncated(pwt_batch *b, int i) { (void)b; (void)i; return 0; }
    static int pwt_same_addr(pwt_batch *b, int i, int j) { (void)b; (void)i; (void)j; return 0; }
    static int pwt_recv_addr(pwt_batch *b, int i, char *h, size_t n, int *p) {
        (void)b; (void)i; (void)h; (void)n; (void)p; return -1; }
    static int pwt_send_addr(pwt_batch *b, int m, int f, const char *h, int p) {
        (void)b; (void)m; (void)f; (void)h; (void)p; return -1; }
    static void pwt_copy_addr(pwt_batch *b, int m, int from) { (void)b; (void)m; (void)from; }
    static void pwt_set_iov(pwt_batch *b, int k, const char *d, size_t n) { (void)b; (void)k; (void)d; (void)n; }
    static void pwt_set_msg(pwt_batch *b, int m, int f, int c, int s) { (void)b; (void)m; (void)f; (void)c; (void)s; }
    static int pwt_sendmmsg(pwt_batch *b, int fd, int s, int c) { (void)b; (void)fd; (void)s; (void)c; return -ENOSYS; }
    static int pwt_probe_gso(int fd) { (void)fd; return 0; }
    #endif
    """
    int PWT_BATCHED
    int PWT_MAX_SEGMENTS
    int PWT_MAX_GSO_BYTES
    int EAGAIN
    int EWOULDBLOCK
    int EINTR
    int EIO
    int EINVAL
    int ENOMEM
    int ENOBUFS
    ctypedef struct pwt_batch:
        pass
    pwt_batch *pwt_batch_new(int capacity, size_t slot)
    void pwt_batch_free(pwt_batch *b)
    int pwt_batch_grow(pwt_batch *b, size_t slot)
    int pwt_recv(pwt_batch *b, int fd)
    const char *pwt_recv_data(pwt_batch *b, int i)
    size_t pwt_recv_len(pwt_batch *b, int i)
    int pwt_recv_truncated(pwt_batch *b, int i)
    int pwt_same_addr(pwt_batch *b, int i, int j)
    int pwt_recv_addr(pwt_batch *b, int i, char *host, size_t hostlen, int *port)
    int pwt_send_addr(pwt_batch *b, int m, int family, const char *host, int port)
    void pwt_copy_addr(pwt_batch *b, int m, int source)
    void pwt_set_iov(pwt_batch *b, int k, const char *data, size_t length)
    void pwt_set_msg(pwt_batch *b, int m, int first, int count, int segment)
    int pwt_sendmmsg(pwt_batch *b, int fd, int start, int count)
    int pwt_probe_gso(int fd)

__all__ = ["BATCHED", "BatchSocket"]

#: True where this build batches (Linux); elsewhere the endpoint uses the pure twin.
BATCHED = bool(PWT_BATCHED)

cdef size_t _SMALL_SLOT = 2048   # covers the datagram sizes QUIC stacks send on real paths
cdef size_t _LARGE_SLOT = 65536  # after the first datagram that did not fit


cdef inline object _os_error(int err):
    return OSError(err, strerror(err).decode("utf-8", "replace"))


cdef class BatchSocket:
    """Receive and send lists of datagrams on a non-blocking UDP socket, batched."""

    cdef pwt_batch *_b
    cdef object _sock
    cdef int _fd
    cdef int _family
    cdef int _capacity
    cdef bint _gso
    cdef int *_firsts   # per message: index of its first datagram in the list being sent
    cdef int *_counts   # per message: how many datagrams it carries
    cdef readonly Py_ssize_t truncated

    def __cinit__(self, sock, *, int batch=64, bint gso=True):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        if not PWT_BATCHED:
            raise OSError("recvmmsg/sendmmsg are not available on this platform")
        self._sock = sock
        self._fd = sock.fileno()
        self._family = sock.family
        self._capacity = batch
        self._b = pwt_batch_new(batch, _SMALL_SLOT)
        self._firsts = <int *>PyMem_Malloc(batch * sizeof(int))
        self._counts = <int *>PyMem_Malloc(batch * sizeof(int))
        if self._b == NULL or self._firsts == NULL or self._counts == NULL:
            raise MemoryError()
        self._gso = gso and pwt_probe_gso(self._fd) == 1
        self.truncated = 0

    def __dealloc__(self):
        pwt_batch_free(self._b)
        PyMem_Free(self._firsts)
        PyMem_Free(self._counts)

    @property
    def batch(self):
        """How many datagrams one ``recv`` reads at most (its receive buffers)."""
        return self._capacity

    @property
    def gso(self):
        """Whether runs of equal-size datagrams leave as one UDP GSO message."""
        return self._gso

    def recv(self):
        """Read up to ``batch`` waiting datagrams; an empty list when none is waiting.

        An error other than "would block" is raised as OSError. A datagram larger than the
        receive slot is dropped (counted in ``truncated``) and the slots grow to 64 KiB.
        """
        cdef int n = pwt_recv(self._b, self._fd)
        cdef int i, port = 0, prev = -1
        cdef char host[64]
        cdef bint grow = False
        if n < 0:
            if -n == EAGAIN or -n == EWOULDBLOCK:
                return []
            raise _os_error(-n)
        received = []
        addr = None
        for i in range(n):
            if pwt_recv_truncated(self._b, i):
                self.truncated += 1
                grow = True
                continue
            if prev < 0 or not pwt_same_addr(self._b, i, prev):
                if pwt_recv_addr(self._b, i, host, sizeof(host), &port) != 0:
                    continue
                addr = ((<char *>host).decode("ascii"), port)
            prev = i
            received.append((PyBytes_FromStringAndSize(pwt_recv_data(self._b, i),
                                                       <Py_ssize_t>pwt_recv_len(self._b, i)), addr))
        if grow:
            pwt_batch_grow(self._b, _LARGE_SLOT)
        return received

    def send(self, list datagrams):
        """Send datagrams, in order where they share an address; return how many left.

        A full send buffer stops the batch (the rest are dropped, as a router would); a
        message the kernel refuses for another reason is skipped. If the kernel rejects a
        GSO message, GSO is turned off for this socket and those datagrams go one by one.
        """
        cdef Py_ssize_t total = len(datagrams)
        cdef Py_ssize_t pos = 0, sent = 0
        cdef int i, m, k, done, r, err, segment, first_iov
        cdef Py_ssize_t length, run_bytes
        cdef bint run_open
        cdef object data, addr, current = None
        keep = []  # bytes made from other buffer types must outlive the system call
        while pos < total:
            m = 0
            k = 0
            segment = 0
            first_iov = 0
            run_bytes = 0
            run_open = False
            current = None
            while pos < total:
                data, addr = datagrams[pos]
                if type(data) is not bytes:
                    data = bytes(data)
                    keep.append(data)
                length = PyBytes_GET_SIZE(data)
                if (m > 0 and self._gso and run_open and length <= segment
                        and self._counts[m - 1] < PWT_MAX_SEGMENTS and run_bytes + length <= PWT_MAX_GSO_BYTES
                        and (addr is current or addr == current)):
                    # The kernel's GSO rule: every segment but the last has the first one's size.
                    pwt_set_iov(self._b, k, PyBytes_AS_STRING(data), <size_t>length)
                    k += 1
                    self._counts[m - 1] += 1
                    run_bytes += length
                    run_open = length == segment
                    pos += 1
                    continue
                if m == self._capacity:
                    break
                if m > 0 and (addr is current or addr == current):
                    pwt_copy_addr(self._b, m, m - 1)
                elif not self._fill_address(m, addr):
                    # Not a numeric address (a name, a scoped IPv6 address): let Python send it.
                    try:
                        self._sock.sendto(data, addr)
                        sent += 1
                    except OSError:
                        pass
                    pos += 1
                    continue
                if m > 0:
                    self._close_message(m - 1, first_iov, segment)
                current = addr
                first_iov = k
                pwt_set_iov(self._b, k, PyBytes_AS_STRING(data), <size_t>length)
                k += 1
                self._firsts[m] = <int>pos
                self._counts[m] = 1
                segment = <int>length
                run_bytes = length
                run_open = True
                m += 1
                pos += 1
            if m == 0:
                continue
            self._close_message(m - 1, first_iov, segment)
            done = 0
            while done < m:
                r = pwt_sendmmsg(self._b, self._fd, done, m - done)
                if r > 0:
                    for i in range(done, done + r):
                        sent += self._counts[i]
                    done += r
                    continue
                err = -r
                if err == EAGAIN or err == EWOULDBLOCK or err == ENOBUFS or err == ENOMEM:
                    return sent  # the socket buffer is full: drop the rest of this pass
                if self._counts[done] > 1 and (err == EIO or err == EINVAL):
                    self._gso = False  # the device or path refuses GSO: send plainly from here
                    pos = self._firsts[done]
                    break
                done += 1  # this message is refused (e.g. unreachable): skip it
        return sent

    cdef bint _fill_address(self, int m, object addr) except -1:
        cdef bytes host
        try:
            name, port = addr[0], int(addr[1])
            if not isinstance(name, str):
                return False
            host = (<str>name).encode("ascii")
        except (TypeError, ValueError, IndexError):
            return False
        if not 0 <= port <= 65535:
            return False
        return pwt_send_addr(self._b, m, self._family, host, port) == 0

    cdef void _close_message(self, int m, int first_iov, int segment):
        pwt_set_msg(self._b, m, first_iov, self._counts[m], segment if self._counts[m] > 1 else 0)

