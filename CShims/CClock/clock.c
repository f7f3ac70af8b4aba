#define _GNU_SOURCE
#include "fio_clock.h"

#include <errno.h>
#include <string.h>
#include <sys/timex.h>

// The kernel's maximum error grows by 500 ppm while nothing disciplines the clock and is reset
// by every NTP adjustment; 16 s is the value it saturates at (NTP_PHASE_LIMIT), which is what
// systemd's ntp_synced() compares with (it ignores STA_UNSYNC, which is also set to keep the
// kernel from writing the RTC).
#define FIO_MAXERROR_LIMIT_US 16000000L

fio_clock_state fio_clock_read(void) {
    fio_clock_state s;
    memset(&s, 0, sizeof s);
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    if (adjtimex(&tx) < 0) {
        s.error = errno;
        s.maxerror_us = -1;
        return s;
    }
    s.maxerror_us = tx.maxerror;
    s.esterror_us = tx.esterror;
    s.status = tx.status;
    s.synchronised = tx.maxerror < FIO_MAXERROR_LIMIT_US;
    return s;
}
