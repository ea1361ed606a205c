//go:build ignore

/* sysio.c: EINTR-safe system calls and signal-safe thread creation. */
#include "sysio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

int pprofio_write_all(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int pprofio_open(const char *path, int flags, mode_t mode) {
    for (;;) {
        int fd = open(path, flags | O_CLOEXEC, mode);
        if (fd >= 0)
            return fd;
        if (errno != EINTR)
            return -errno;
    }
}

int pprofio_fsync(int fd) {
    while (fsync(fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int pprofio_close(int fd) {
    /* On Linux the descriptor is gone even when close reports EINTR. */
    if (close(fd) != 0 && errno != EINTR)
        return -errno;
    return 0;
}

static int mkdir_one(const char *path, mode_t mode) {
    while (mkdir(path, mode) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EEXIST) {
            struct stat st;
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return 0;
            return -ENOTDIR;
        }
        return -errno;
    }
    return 0;
}

int pprofio_mkdirs(const char *path, mode_t mode) {
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    char *p = pprofio_malloc(n + 1);
    if (!p)
        return -ENOMEM;
    memcpy(p, path, n + 1);
    int rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            rc = mkdir_one(p, mode);
            p[i] = c;
        }
    }
    pprofio_free(p);
    return rc;
}

int pprofio_fsync_dir(const char *dir) {
    int fd = pprofio_open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    int rc = pprofio_fsync(fd);
    pprofio_close(fd);
    return rc;
}

int pprofio_atomic_create(pprofio_atomic_file *f, const char *dir) {
    *f = (pprofio_atomic_file){.fd = -1, .dir = dir, .step = "create"};
    size_t n = strlen(dir) + 16;
    f->tmp = pprofio_malloc(n);
    if (!f->tmp)
        return -ENOMEM;
    snprintf(f->tmp, n, "%s/.tmp-XXXXXX", dir);
    f->fd = mkostemp(f->tmp, O_CLOEXEC); /* 0600 */
    if (f->fd < 0)
        return -errno;
    f->created = 1;
    return 0;
}

int pprofio_atomic_sync(pprofio_atomic_file *f) {
    f->step = "fsync";
    int rc = pprofio_fsync(f->fd);
    int crc = pprofio_close(f->fd);
    f->fd = -1;
    if (rc == 0 && crc != 0) {
        f->step = "close";
        rc = crc;
    }
    return rc;
}

/* rename_noreplace moves tmp to dst unless dst exists (-EEXIST). */
static int rename_noreplace(const char *tmp, const char *dst) {
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* The file system has no RENAME_NOREPLACE: link then unlink. */
    if (link(tmp, dst) != 0)
        return -errno;
    unlink(tmp);
    return 0;
}

int pprofio_atomic_rename(pprofio_atomic_file *f, const char *path, int replace) {
    f->step = "rename";
    int rc = replace ? (rename(f->tmp, path) == 0 ? 0 : -errno) : rename_noreplace(f->tmp, path);
    if (rc == 0)
        f->renamed = 1;
    return rc;
}

void pprofio_atomic_end(pprofio_atomic_file *f) {
    if (f->fd >= 0)
        pprofio_close(f->fd);
    if (f->renamed)
        pprofio_fsync_dir(f->dir); /* best effort: the file itself is complete */
    else if (f->created)
        unlink(f->tmp);
    pprofio_free(f->tmp);
    *f = (pprofio_atomic_file){.fd = -1};
}

void pprofio_async_signals(sigset_t *set) {
    sigfillset(set);
    /* Faults are delivered to the thread that caused them; never block them. */
    static const int synchronous[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++)
        sigdelset(set, synchronous[i]);
}

int pprofio_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
    sigset_t block, old;
    pprofio_async_signals(&block);
    int rc = pthread_sigmask(SIG_BLOCK, &block, &old);
    if (rc != 0)
        return -rc;
    rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}
