// See include/fio_gpio.h. Two implementations of one API: libgpiod 1.6 (its gpiod.h defines
// GPIOD_LINE_BULK_MAX_LINES) and libgpiod 2.x (line requests and settings objects).
#define _GNU_SOURCE
#include "fio_gpio.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <gpiod.h>

#if defined(GPIOD_LINE_BULK_MAX_LINES)
#define FIO_V1 1
#else
#define FIO_V1 0
#endif

// MARK: Common

static void fail(fio_error *err, int code, const char *fmt, ...) {
    if (!err) return;
    err->code = code ? code : EIO;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->op, sizeof err->op, fmt, ap);
    va_end(ap);
}

static void clear(fio_error *err) {
    if (err) { err->code = 0; err->op[0] = 0; }
}

static void copy(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

int fio_api_major(void) { return FIO_V1 ? 1 : 2; }

bool fio_is_gpiochip(const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0 || !S_ISCHR(st.st_mode)) return false;
    char link[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "/sys/dev/char/%u:%u/subsystem", major(st.st_rdev), minor(st.st_rdev));
    if (!realpath(link, target)) return false;
    const char *slash = strrchr(target, '/');
    return slash && strcmp(slash + 1, "gpio") == 0;
}

struct fio_chip {
    struct gpiod_chip *chip;
    fio_chip_info info;
};

struct fio_request {
    unsigned int offset;
    bool kernel_debounce;
#if FIO_V1
    struct gpiod_chip *chip;  // the request's own handle: 1.6 lines belong to their chip
    struct gpiod_line *line;
    uint64_t seqno;
#else
    struct gpiod_line_request *request;
    struct gpiod_edge_event_buffer *buffer;
    int buffered, next;
#endif
};

static fio_chip *open_path(const char *path, fio_error *err);

fio_chip *fio_chip_open(const char *which, fio_error *err) {
    clear(err);
    if (!which || !*which) { fail(err, EINVAL, "open GPIO chip: no chip given"); return NULL; }
    if (strchr(which, '/')) return open_path(which, err);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "/dev/%s", which);
    if (fio_is_gpiochip(path)) return open_path(path, err);
    // Not a name: look for a chip with this label.
    DIR *dev = opendir("/dev");
    if (!dev) { fail(err, errno, "open GPIO chip %s: list /dev", which); return NULL; }
    int denied = 0;
    struct dirent *e;
    while ((e = readdir(dev))) {
        if (strncmp(e->d_name, "gpiochip", 8) != 0) continue;
        snprintf(path, sizeof path, "/dev/%s", e->d_name);
        if (!fio_is_gpiochip(path)) continue;
        fio_error ignored;
        fio_chip *chip = open_path(path, &ignored);
        if (!chip) { if (ignored.code == EACCES || ignored.code == EPERM) denied = ignored.code; continue; }
        if (strcmp(chip->info.label, which) == 0) { closedir(dev); return chip; }
        fio_chip_close(chip);
    }
    closedir(dev);
    if (denied) fail(err, denied, "open GPIO chip labelled %s: some /dev/gpiochip* could not be opened", which);
    else fail(err, ENOENT, "open GPIO chip %s: no chip has that name or label", which);
    return NULL;
}

int fio_chip_find_line(fio_chip *chip, const char *name, fio_error *err) {
    clear(err);
    for (unsigned int i = 0; i < chip->info.lines; i++) {
        fio_line_info info;
        if (fio_chip_line_info(chip, i, &info, err) != 0) return -1;
        if (strcmp(info.name, name) == 0) return (int)i;
    }
    fail(err, ENOENT, "find line %s on %s: no line has that name", name, chip->info.name);
    return -1;
}

void fio_chip_get_info(fio_chip *chip, fio_chip_info *out) { *out = chip->info; }

bool fio_request_kernel_debounce(fio_request *request) { return request->kernel_debounce; }

#if FIO_V1
// MARK: libgpiod 1.6

const char *fio_backend(void) {
    static char text[64];
    snprintf(text, sizeof text, "libgpiod %s", gpiod_version_string());
    return text;
}

static fio_chip *open_path(const char *path, fio_error *err) {
    struct gpiod_chip *c = gpiod_chip_open(path);
    if (!c) { fail(err, errno, "open GPIO chip %s", path); return NULL; }
    fio_chip *chip = calloc(1, sizeof *chip);
    if (!chip) { gpiod_chip_close(c); fail(err, ENOMEM, "open GPIO chip %s", path); return NULL; }
    chip->chip = c;
    copy(chip->info.name, sizeof chip->info.name, gpiod_chip_name(c));
    copy(chip->info.label, sizeof chip->info.label, gpiod_chip_label(c));
    copy(chip->info.path, sizeof chip->info.path, path);
    chip->info.lines = gpiod_chip_num_lines(c);
    return chip;
}

void fio_chip_close(fio_chip *chip) {
    if (!chip) return;
    gpiod_chip_close(chip->chip);
    free(chip);
}

static fio_bias bias_of(int b) {
    switch (b) {
    case GPIOD_LINE_BIAS_DISABLE: return FIO_BIAS_DISABLED;
    case GPIOD_LINE_BIAS_PULL_UP: return FIO_BIAS_PULL_UP;
    case GPIOD_LINE_BIAS_PULL_DOWN: return FIO_BIAS_PULL_DOWN;
    default: return FIO_BIAS_AS_IS;
    }
}

int fio_chip_line_info(fio_chip *chip, unsigned int offset, fio_line_info *out, fio_error *err) {
    clear(err);
    struct gpiod_line *line = gpiod_chip_get_line(chip->chip, offset);
    if (!line) { fail(err, errno, "read line %u of %s", offset, chip->info.name); return -1; }
    if (gpiod_line_update(line) != 0) { fail(err, errno, "read line %u of %s", offset, chip->info.name); return -1; }
    memset(out, 0, sizeof *out);
    out->offset = offset;
    copy(out->name, sizeof out->name, gpiod_line_name(line));
    copy(out->consumer, sizeof out->consumer, gpiod_line_consumer(line));
    out->used = gpiod_line_is_used(line);
    out->direction = gpiod_line_direction(line) == GPIOD_LINE_DIRECTION_OUTPUT ? FIO_DIRECTION_OUTPUT : FIO_DIRECTION_INPUT;
    out->active_low = gpiod_line_active_state(line) == GPIOD_LINE_ACTIVE_STATE_LOW;
    out->bias = bias_of(gpiod_line_bias(line));
    return 0;
}

static fio_request *request_line(fio_chip *chip, unsigned int offset, const char *consumer, int type, int flags, int value,
                                 const char *what, fio_error *err) {
    clear(err);
    fio_request *r = calloc(1, sizeof *r);
    if (!r) { fail(err, ENOMEM, "request line %u of %s", offset, chip->info.name); return NULL; }
    r->offset = offset;
    r->chip = gpiod_chip_open(chip->info.path);
    if (!r->chip) { fail(err, errno, "open GPIO chip %s", chip->info.path); free(r); return NULL; }
    r->line = gpiod_chip_get_line(r->chip, offset);
    if (!r->line) { fail(err, errno, "request line %u of %s (%u lines)", offset, chip->info.name, chip->info.lines); goto fail; }
    struct gpiod_line_request_config config = { .consumer = consumer, .request_type = type, .flags = flags };
    if (gpiod_line_request(r->line, &config, value) != 0) {
        fail(err, errno, "request line %u of %s as %s", offset, chip->info.name, what);
        goto fail;
    }
    return r;
fail:
    gpiod_chip_close(r->chip);
    free(r);
    return NULL;
}

fio_request *fio_request_input(fio_chip *chip, unsigned int offset, const char *consumer, fio_edge edge, fio_bias bias,
                               bool active_low, uint32_t debounce_us, fio_error *err) {
    (void)debounce_us;  // the v1 uAPI has no debounce: the caller debounces
    int type = GPIOD_LINE_REQUEST_DIRECTION_INPUT;
    switch (edge) {
    case FIO_EDGE_RISING: type = GPIOD_LINE_REQUEST_EVENT_RISING_EDGE; break;
    case FIO_EDGE_FALLING: type = GPIOD_LINE_REQUEST_EVENT_FALLING_EDGE; break;
    case FIO_EDGE_BOTH: type = GPIOD_LINE_REQUEST_EVENT_BOTH_EDGES; break;
    default: break;
    }
    int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    switch (bias) {
    case FIO_BIAS_DISABLED: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE; break;
    case FIO_BIAS_PULL_UP: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP; break;
    case FIO_BIAS_PULL_DOWN: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN; break;
    default: break;
    }
    fio_request *r = request_line(chip, offset, consumer, type, flags, 0, edge == FIO_EDGE_NONE ? "input" : "input with edge events", err);
    if (r) r->kernel_debounce = false;
    return r;
}

fio_request *fio_request_output(fio_chip *chip, unsigned int offset, const char *consumer, int value, fio_error *err) {
    return request_line(chip, offset, consumer, GPIOD_LINE_REQUEST_DIRECTION_OUTPUT, 0, value ? 1 : 0, "output", err);
}

void fio_request_release(fio_request *r) {
    if (!r) return;
    gpiod_line_release(r->line);
    gpiod_chip_close(r->chip);
    free(r);
}

int fio_request_get_value(fio_request *r, fio_error *err) {
    clear(err);
    int v = gpiod_line_get_value(r->line);
    if (v < 0) fail(err, errno, "read the value of line %u", r->offset);
    return v;
}

int fio_request_set_value(fio_request *r, int value, fio_error *err) {
    clear(err);
    if (gpiod_line_set_value(r->line, value ? 1 : 0) != 0) { fail(err, errno, "set line %u to %d", r->offset, value); return -1; }
    return 0;
}

int fio_request_wait_event(fio_request *r, int64_t timeout_ns, fio_error *err) {
    clear(err);
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    int rc = gpiod_line_event_wait(r->line, &ts);
    if (rc < 0) fail(err, errno, "wait for an edge on line %u", r->offset);
    return rc;
}

int fio_request_read_event(fio_request *r, fio_event *out, fio_error *err) {
    clear(err);
    struct gpiod_line_event event;
    if (gpiod_line_event_read(r->line, &event) != 0) { fail(err, errno, "read an edge event of line %u", r->offset); return -1; }
    out->timestamp_ns = (uint64_t)event.ts.tv_sec * 1000000000u + (uint64_t)event.ts.tv_nsec;
    out->rising = event.event_type == GPIOD_LINE_EVENT_RISING_EDGE;
    out->offset = r->offset;
    out->line_seqno = ++r->seqno;
    out->kernel_seqno = false;
    return 0;
}

#else
// MARK: libgpiod 2.x

const char *fio_backend(void) {
    static char text[64];
    snprintf(text, sizeof text, "libgpiod %s", gpiod_api_version());
    return text;
}

static fio_chip *open_path(const char *path, fio_error *err) {
    struct gpiod_chip *c = gpiod_chip_open(path);
    if (!c) { fail(err, errno, "open GPIO chip %s", path); return NULL; }
    struct gpiod_chip_info *info = gpiod_chip_get_info(c);
    if (!info) { fail(err, errno, "read GPIO chip %s", path); gpiod_chip_close(c); return NULL; }
    fio_chip *chip = calloc(1, sizeof *chip);
    if (!chip) { gpiod_chip_info_free(info); gpiod_chip_close(c); fail(err, ENOMEM, "open GPIO chip %s", path); return NULL; }
    chip->chip = c;
    copy(chip->info.name, sizeof chip->info.name, gpiod_chip_info_get_name(info));
    copy(chip->info.label, sizeof chip->info.label, gpiod_chip_info_get_label(info));
    copy(chip->info.path, sizeof chip->info.path, path);
    chip->info.lines = (unsigned int)gpiod_chip_info_get_num_lines(info);
    gpiod_chip_info_free(info);
    return chip;
}

void fio_chip_close(fio_chip *chip) {
    if (!chip) return;
    gpiod_chip_close(chip->chip);
    free(chip);
}

static fio_bias bias_of(enum gpiod_line_bias b) {
    switch (b) {
    case GPIOD_LINE_BIAS_DISABLED: return FIO_BIAS_DISABLED;
    case GPIOD_LINE_BIAS_PULL_UP: return FIO_BIAS_PULL_UP;
    case GPIOD_LINE_BIAS_PULL_DOWN: return FIO_BIAS_PULL_DOWN;
    default: return FIO_BIAS_AS_IS;
    }
}

int fio_chip_line_info(fio_chip *chip, unsigned int offset, fio_line_info *out, fio_error *err) {
    clear(err);
    struct gpiod_line_info *info = gpiod_chip_get_line_info(chip->chip, offset);
    if (!info) { fail(err, errno, "read line %u of %s", offset, chip->info.name); return -1; }
    memset(out, 0, sizeof *out);
    out->offset = offset;
    copy(out->name, sizeof out->name, gpiod_line_info_get_name(info));
    copy(out->consumer, sizeof out->consumer, gpiod_line_info_get_consumer(info));
    out->used = gpiod_line_info_is_used(info);
    out->direction = gpiod_line_info_get_direction(info) == GPIOD_LINE_DIRECTION_OUTPUT ? FIO_DIRECTION_OUTPUT : FIO_DIRECTION_INPUT;
    out->active_low = gpiod_line_info_is_active_low(info);
    out->bias = bias_of(gpiod_line_info_get_bias(info));
    gpiod_line_info_free(info);
    return 0;
}

static fio_request *request_line(fio_chip *chip, unsigned int offset, const char *consumer, struct gpiod_line_settings *settings,
                                 const char *what, fio_error *err) {
    fio_request *r = NULL;
    struct gpiod_line_config *lines = gpiod_line_config_new();
    struct gpiod_request_config *config = gpiod_request_config_new();
    if (!lines || !config) { fail(err, ENOMEM, "request line %u of %s", offset, chip->info.name); goto done; }
    if (gpiod_line_config_add_line_settings(lines, &offset, 1, settings) != 0) {
        fail(err, errno, "request line %u of %s as %s", offset, chip->info.name, what);
        goto done;
    }
    gpiod_request_config_set_consumer(config, consumer);
    struct gpiod_line_request *request = gpiod_chip_request_lines(chip->chip, config, lines);
    if (!request) {
        fail(err, errno, "request line %u of %s as %s", offset, chip->info.name, what);
        goto done;
    }
    r = calloc(1, sizeof *r);
    if (!r) { gpiod_line_request_release(request); fail(err, ENOMEM, "request line %u", offset); goto done; }
    r->offset = offset;
    r->request = request;
done:
    gpiod_request_config_free(config);
    gpiod_line_config_free(lines);
    return r;
}

fio_request *fio_request_input(fio_chip *chip, unsigned int offset, const char *consumer, fio_edge edge, fio_bias bias,
                               bool active_low, uint32_t debounce_us, fio_error *err) {
    clear(err);
    struct gpiod_line_settings *s = gpiod_line_settings_new();
    if (!s) { fail(err, ENOMEM, "request line %u", offset); return NULL; }
    gpiod_line_settings_set_direction(s, GPIOD_LINE_DIRECTION_INPUT);
    static const enum gpiod_line_edge edges[] = { GPIOD_LINE_EDGE_NONE, GPIOD_LINE_EDGE_RISING, GPIOD_LINE_EDGE_FALLING, GPIOD_LINE_EDGE_BOTH };
    static const enum gpiod_line_bias biases[] = { GPIOD_LINE_BIAS_AS_IS, GPIOD_LINE_BIAS_DISABLED, GPIOD_LINE_BIAS_PULL_UP, GPIOD_LINE_BIAS_PULL_DOWN };
    gpiod_line_settings_set_edge_detection(s, edges[edge]);
    gpiod_line_settings_set_bias(s, biases[bias]);
    gpiod_line_settings_set_active_low(s, active_low);
    if (debounce_us) gpiod_line_settings_set_debounce_period_us(s, debounce_us);
    fio_request *r = request_line(chip, offset, consumer, s, edge == FIO_EDGE_NONE ? "input" : "input with edge events", err);
    gpiod_line_settings_free(s);
    if (r) r->kernel_debounce = debounce_us > 0;
    return r;
}

fio_request *fio_request_output(fio_chip *chip, unsigned int offset, const char *consumer, int value, fio_error *err) {
    clear(err);
    struct gpiod_line_settings *s = gpiod_line_settings_new();
    if (!s) { fail(err, ENOMEM, "request line %u", offset); return NULL; }
    gpiod_line_settings_set_direction(s, GPIOD_LINE_DIRECTION_OUTPUT);
    gpiod_line_settings_set_output_value(s, value ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE);
    fio_request *r = request_line(chip, offset, consumer, s, "output", err);
    gpiod_line_settings_free(s);
    return r;
}

void fio_request_release(fio_request *r) {
    if (!r) return;
    gpiod_line_request_release(r->request);
    if (r->buffer) gpiod_edge_event_buffer_free(r->buffer);
    free(r);
}

int fio_request_get_value(fio_request *r, fio_error *err) {
    clear(err);
    enum gpiod_line_value v = gpiod_line_request_get_value(r->request, r->offset);
    if (v == GPIOD_LINE_VALUE_ERROR) { fail(err, errno, "read the value of line %u", r->offset); return -1; }
    return v == GPIOD_LINE_VALUE_ACTIVE ? 1 : 0;
}

int fio_request_set_value(fio_request *r, int value, fio_error *err) {
    clear(err);
    if (gpiod_line_request_set_value(r->request, r->offset, value ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE) != 0) {
        fail(err, errno, "set line %u to %d", r->offset, value);
        return -1;
    }
    return 0;
}

int fio_request_wait_event(fio_request *r, int64_t timeout_ns, fio_error *err) {
    clear(err);
    if (r->next < r->buffered) return 1;
    int rc = gpiod_line_request_wait_edge_events(r->request, timeout_ns);
    if (rc < 0) fail(err, errno, "wait for an edge on line %u", r->offset);
    return rc;
}

int fio_request_read_event(fio_request *r, fio_event *out, fio_error *err) {
    clear(err);
    if (!r->buffer && !(r->buffer = gpiod_edge_event_buffer_new(64))) { fail(err, ENOMEM, "read edge events of line %u", r->offset); return -1; }
    if (r->next >= r->buffered) {
        int n = gpiod_line_request_read_edge_events(r->request, r->buffer, 64);
        if (n < 0) { fail(err, errno, "read edge events of line %u", r->offset); return -1; }
        r->buffered = n;
        r->next = 0;
        if (n == 0) { fail(err, EAGAIN, "read edge events of line %u", r->offset); return -1; }
    }
    struct gpiod_edge_event *e = gpiod_edge_event_buffer_get_event(r->buffer, (unsigned long)r->next++);
    out->timestamp_ns = gpiod_edge_event_get_timestamp_ns(e);
    out->rising = gpiod_edge_event_get_event_type(e) == GPIOD_EDGE_EVENT_RISING_EDGE;
    out->offset = gpiod_edge_event_get_line_offset(e);
    out->line_seqno = gpiod_edge_event_get_line_seqno(e);
    out->kernel_seqno = true;
    return 0;
}

#endif
