// Whether the kernel considers the system clock synchronised (by NTP, chrony, systemd-timesyncd
// or a GPS daemon): the node and the C sensor agent mark what they time-stamp with it.
#ifndef FIO_CLOCK_H
#define FIO_CLOCK_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fio_clock_state {
    bool synchronised;  // maxerror below 16 s, as systemd's NTPSynchronized reads it
    long maxerror_us;   // the kernel's maximum error estimate (µs); -1 when adjtimex failed
    long esterror_us;   // its estimated error (µs)
    int status;         // the STA_* flags
    int error;          // errno when adjtimex failed, else 0
} fio_clock_state;

/// Reads the kernel's clock discipline state (adjtimex with no modes: changes nothing).
fio_clock_state fio_clock_read(void);

#ifdef __cplusplus
}
#endif

#endif
