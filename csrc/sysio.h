/*
 * sysio.h: system calls as the core uses them. The host program may be
 * CPU profiling (SIGPROF) or handling its own signals, so every call here
 * retries on EINTR and writes handle short counts. Threads are created with
 * the asynchronous signals blocked, so they are delivered to Go's threads
 * and never kill the program from a C thread (SIGPIPE above all).
 */
#ifndef PPROFIO_SYSIO_H
#define PPROFIO_SYSIO_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Each returns 0 (or a descriptor) on success and -errno on failure. */
int pprofio_write_all(int fd, const void *p, size_t n);
int pprofio_open(const char *path, int flags, mode_t mode);
int pprofio_fsync(int fd);
int pprofio_close(int fd);
/* pprofio_mkdirs creates path and its missing parents with mode. */
int pprofio_mkdirs(const char *path, mode_t mode);
/* pprofio_fsync_dir makes a rename inside dir durable. */
int pprofio_fsync_dir(const char *dir);

/*
 * An atomic file: written to a temp file in its folder, then fsynced,
 * closed and renamed into place, and the folder fsynced, so that the file
 * is whole or absent after a crash. The one writer of the local store and
 * the disk spool.
 *
 *   pprofio_atomic_file f;
 *   pprofio_atomic_create(&f, dir);           write to f.fd
 *   pprofio_atomic_sync(&f);                  fsync and close
 *   pprofio_atomic_rename(&f, path, replace); into place (-EEXIST if taken and !replace)
 *   pprofio_atomic_end(&f);                   fsync dir if renamed, else unlink; frees
 *
 * Each returns 0 or -errno and sets f.step to what it was doing.
 */
typedef struct {
    int fd;
    char *tmp;       /* the temp file's path, until renamed */
    const char *dir; /* not owned */
    const char *step;
    int created, renamed;
} pprofio_atomic_file;

int pprofio_atomic_create(pprofio_atomic_file *f, const char *dir);
int pprofio_atomic_sync(pprofio_atomic_file *f);
int pprofio_atomic_rename(pprofio_atomic_file *f, const char *path, int replace);
void pprofio_atomic_end(pprofio_atomic_file *f);

/* pprofio_thread_create starts fn with every asynchronous signal blocked. */
int pprofio_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* pprofio_async_signals fills set with the signals the core blocks. */
void pprofio_async_signals(sigset_t *set);

#endif
