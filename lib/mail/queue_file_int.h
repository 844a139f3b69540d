/*
 * queue_file_int.h - helpers shared by the queue file reader and writer
 * (queue_file_read.c, queue_file_write.c, queue_file.c). Not for use outside
 * lib/mail/queue_file*.c: the public interface is queue_file.h.
 */
#ifndef PETREL_QUEUE_FILE_INT_H
#define PETREL_QUEUE_FILE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fixed payload sizes of the fixed-width records. */
#define QREC_VERSION_LEN 4
#define QREC_ARRIVAL_LEN 12
#define QREC_SCHEDULE_LEN 12
#define QREC_SIZE_LEN 8
#define QREC_RET_LEN 1
/* Recipient payload: status, notify, has_orcpt, u16 address length, address,
 * u16 orcpt length, orcpt. The status byte is the first payload byte. */
#define QREC_RCPT_FIXED_LEN 7

/* Big-endian encoding of the numbers in records. */
static inline void qf_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void qf_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline void qf_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline uint16_t qf_get_u16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t qf_get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t qf_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* write() until all n bytes are written; retries EINTR. -1 with errno set. */
int qf_write_all(int fd, const void *p, size_t n);
/* pwrite() all n bytes at off; retries EINTR. -1 with errno set. */
int qf_pwrite_all(int fd, const void *p, size_t n, off_t off);
/* pread() up to n bytes at off, retrying EINTR and short reads until n bytes
 * or end of file. Returns the count read or -1 with errno set. */
ssize_t qf_pread_full(int fd, void *p, size_t n, off_t off);
/* fsync()s the directory open at dirfd. -1 with errno set. */
int qf_fsync_fd(int fd);

#endif
