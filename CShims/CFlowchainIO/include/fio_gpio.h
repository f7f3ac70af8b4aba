// One small C API over the GPIO character device, through libgpiod 1.6 or 2.x (chosen at build
// time from the installed gpiod.h). The node's Swift `Sensors` module and the C sensor agent for
// boards that cannot run Swift are both built on it.
//
// Every call that can fail takes a `fio_error *` (may be NULL) and fills it with errno and the
// operation, e.g. {EBUSY, "request line 17 of gpiochip0"}. Handles are owned by the caller and
// released with their close/release function; a request does not depend on the chip handle it
// was made from (it may be closed first).
#ifndef FIO_GPIO_H
#define FIO_GPIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fio_error {
    int code;         // errno; 0 when no error
    char op[160];     // what was being done
} fio_error;

typedef struct fio_chip fio_chip;
typedef struct fio_request fio_request;

typedef enum { FIO_BIAS_AS_IS = 0, FIO_BIAS_DISABLED, FIO_BIAS_PULL_UP, FIO_BIAS_PULL_DOWN } fio_bias;
typedef enum { FIO_EDGE_NONE = 0, FIO_EDGE_RISING, FIO_EDGE_FALLING, FIO_EDGE_BOTH } fio_edge;
typedef enum { FIO_DIRECTION_INPUT = 0, FIO_DIRECTION_OUTPUT } fio_direction;

typedef struct fio_chip_info {
    char name[64];    // gpiochip0
    char label[64];   // pinctrl-bcm2711, gpio-sim.0-node0 …
    char path[128];   // /dev/gpiochip0
    unsigned int lines;
} fio_chip_info;

typedef struct fio_line_info {
    unsigned int offset;
    char name[64];      // "" when the line has no name
    char consumer[64];  // "" when unused or unnamed
    bool used;
    fio_direction direction;
    bool active_low;
    fio_bias bias;
} fio_line_info;

typedef struct fio_event {
    uint64_t timestamp_ns;  // the kernel's, CLOCK_MONOTONIC
    bool rising;
    unsigned int offset;
    uint64_t line_seqno;    // 1, 2, … per request (2.x: the kernel's; 1.6: counted here)
    bool kernel_seqno;      // whether line_seqno came from the kernel
} fio_event;

/// "libgpiod 1.6.3" or "libgpiod 2.2.1": the library this was built and linked against.
const char *fio_backend(void);
/// 1 or 2: the libgpiod API this was compiled for.
int fio_api_major(void);

/// True when `path` is a GPIO character device.
bool fio_is_gpiochip(const char *path);

/// Opens a chip by path (/dev/gpiochip0), by name (gpiochip0) or by label (pinctrl-bcm2711).
fio_chip *fio_chip_open(const char *which, fio_error *err);
void fio_chip_close(fio_chip *chip);
void fio_chip_get_info(fio_chip *chip, fio_chip_info *out);
int fio_chip_line_info(fio_chip *chip, unsigned int offset, fio_line_info *out, fio_error *err);
/// The offset of the line named `name`, or -1 (err: ENOENT).
int fio_chip_find_line(fio_chip *chip, const char *name, fio_error *err);

/// Requests one input line. With `edge` other than NONE, edge events can be waited for. A
/// debounce period is applied by the kernel where the API offers it (2.x); see
/// `fio_request_kernel_debounce`.
fio_request *fio_request_input(fio_chip *chip, unsigned int offset, const char *consumer, fio_edge edge, fio_bias bias,
                               bool active_low, uint32_t debounce_us, fio_error *err);
/// Requests one output line, driven to `value` (0 or 1).
fio_request *fio_request_output(fio_chip *chip, unsigned int offset, const char *consumer, int value, fio_error *err);
void fio_request_release(fio_request *request);

/// 0 or 1 (logical value: active-low inverts), or -1.
int fio_request_get_value(fio_request *request, fio_error *err);
int fio_request_set_value(fio_request *request, int value, fio_error *err);
/// Whether the requested debounce period is applied by the kernel (else the caller debounces).
bool fio_request_kernel_debounce(fio_request *request);
/// 1 when an event is ready, 0 after `timeout_ns` without one, -1 on error.
int fio_request_wait_event(fio_request *request, int64_t timeout_ns, fio_error *err);
/// Reads the next event (blocks if none is ready); 0 or -1.
int fio_request_read_event(fio_request *request, fio_event *out, fio_error *err);

#ifdef __cplusplus
}
#endif

#endif
