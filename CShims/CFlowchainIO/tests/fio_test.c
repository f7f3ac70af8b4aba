// C unit tests of the GPIO shim, built against libgpiod 1.6 and 2.x by scripts/test-c-shims.
//
// Without a chip they check what needs none (errors carry errno and the operation). With
// FIO_TEST_CHIP=<label> and FIO_TEST_SIM=<gpio-sim chip directory in sysfs> (the VM test sets
// both) they drive a gpio-sim chip: values, edges both ways with timestamps and sequence numbers,
// bias, line names, busy lines and outputs.
#define _GNU_SOURCE
#include "fio_gpio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0, checks = 0;
#define CHECK(cond, ...) do { checks++; if (!(cond)) { failures++; printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); printf(__VA_ARGS__); printf("\n"); } } while (0)

static void without_a_chip(void) {
    const char *backend = fio_backend();
    char expected[16];
    snprintf(expected, sizeof expected, "libgpiod %d.", fio_api_major());
    CHECK(strncmp(backend, expected, strlen(expected)) == 0, "backend %s, API %d", backend, fio_api_major());
    CHECK(!fio_is_gpiochip("/dev/null"), "/dev/null is no GPIO chip");
    CHECK(!fio_is_gpiochip("/nonexistent"), "a missing path is no GPIO chip");
    CHECK(!fio_is_gpiochip(NULL), "NULL");

    fio_error err;
    CHECK(fio_chip_open("/dev/flowchain-no-such-chip", &err) == NULL, "opened a missing path");
    CHECK(err.code == ENOENT, "errno %d", err.code);
    CHECK(strstr(err.op, "open GPIO chip /dev/flowchain-no-such-chip") != NULL, "op: %s", err.op);

    CHECK(fio_chip_open("flowchain-no-such-label", &err) == NULL, "opened a missing label");
    CHECK(err.code == ENOENT, "errno %d", err.code);
    CHECK(strstr(err.op, "no chip has that name or label") != NULL, "op: %s", err.op);

    CHECK(fio_chip_open("", &err) == NULL && err.code == EINVAL, "empty: errno %d", err.code);
    CHECK(fio_chip_open(NULL, NULL) == NULL, "NULL chip and NULL error are allowed");
    CHECK(fio_chip_open("/dev/null", &err) == NULL && err.code != 0, "/dev/null is refused: errno %d (%s)", err.code, err.op);
}

static int sim_write(const char *sim, unsigned int line, const char *file, const char *value) {
    char path[512];
    snprintf(path, sizeof path, "%s/sim_gpio%u/%s", sim, line, file);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(value, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int sim_read(const char *sim, unsigned int line, const char *file, char *out, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/sim_gpio%u/%s", sim, line, file);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *got = fgets(out, (int)size, f);
    fclose(f);
    if (!got) return -1;
    out[strcspn(out, "\n")] = 0;
    return 0;
}

static void with_a_simulated_chip(const char *label, const char *sim) {
    fio_error err;
    fio_chip *chip = fio_chip_open(label, &err);
    CHECK(chip != NULL, "open %s: %d %s", label, err.code, err.op);
    if (!chip) return;
    fio_chip_info info;
    fio_chip_get_info(chip, &info);
    CHECK(strcmp(info.label, label) == 0 && info.lines >= 4, "label %s, %u lines", info.label, info.lines);
    fio_chip *by_name = fio_chip_open(info.name, &err);
    CHECK(by_name != NULL, "open by name %s: %s", info.name, err.op);
    fio_chip_close(by_name);

    int button = fio_chip_find_line(chip, "button", &err);
    CHECK(button >= 0, "line 'button': %s", err.op);
    CHECK(fio_chip_find_line(chip, "no-such-line", &err) == -1 && err.code == ENOENT, "missing line: %d", err.code);
    if (button < 0) { fio_chip_close(chip); return; }

    // Edges both ways, with the kernel's timestamps and sequence numbers.
    sim_write(sim, (unsigned)button, "pull", "pull-down");
    fio_request *in = fio_request_input(chip, (unsigned)button, "fio-test", FIO_EDGE_BOTH, FIO_BIAS_PULL_DOWN, false, 0, &err);
    CHECK(in != NULL, "request input: %d %s", err.code, err.op);
    if (in) {
        CHECK(fio_request_get_value(in, &err) == 0, "starts low");
        fio_line_info li;
        CHECK(fio_chip_line_info(chip, (unsigned)button, &li, &err) == 0 && li.used && strcmp(li.consumer, "fio-test") == 0 && li.bias == FIO_BIAS_PULL_DOWN,
              "info: used %d consumer %s bias %d", li.used, li.consumer, li.bias);
        uint64_t last_ts = 0;
        for (int i = 1; i <= 6; i++) {
            sim_write(sim, (unsigned)button, "pull", i % 2 ? "pull-up" : "pull-down");
            CHECK(fio_request_wait_event(in, 2000000000LL, &err) == 1, "edge %d arrives: %s", i, err.op);
            fio_event e;
            CHECK(fio_request_read_event(in, &e, &err) == 0, "read edge %d: %s", i, err.op);
            CHECK(e.rising == (i % 2 == 1), "edge %d rising %d", i, e.rising);
            CHECK(e.line_seqno == (uint64_t)i, "edge %d seqno %llu", i, (unsigned long long)e.line_seqno);
            CHECK(e.timestamp_ns > last_ts, "timestamps increase");
            last_ts = e.timestamp_ns;
            CHECK(fio_request_get_value(in, &err) == (i % 2), "value after edge %d", i);
        }
        CHECK(fio_request_wait_event(in, 50000000LL, &err) == 0, "no edge: a timeout");
        // Busy: a second request of the same line is refused, and the line says by whom.
        fio_request *again = fio_request_input(chip, (unsigned)button, "someone-else", FIO_EDGE_NONE, FIO_BIAS_AS_IS, false, 0, &err);
        CHECK(again == NULL && err.code == EBUSY, "busy: %d %s", err.code, err.op);
        fio_request_release(again);
        fio_request_release(in);
    }
    // An output drives the simulated line.
    int led = fio_chip_find_line(chip, "led", &err);
    CHECK(led >= 0, "line 'led'");
    if (led >= 0) {
        fio_request *out = fio_request_output(chip, (unsigned)led, "fio-test", 1, &err);
        CHECK(out != NULL, "request output: %s", err.op);
        char value[16] = "";
        CHECK(sim_read(sim, (unsigned)led, "value", value, sizeof value) == 0 && strcmp(value, "1") == 0, "driven high: %s", value);
        CHECK(fio_request_set_value(out, 0, &err) == 0, "set low");
        CHECK(sim_read(sim, (unsigned)led, "value", value, sizeof value) == 0 && strcmp(value, "0") == 0, "driven low: %s", value);
        fio_request_release(out);
    }
    // A line beyond the chip is a precise error.
    CHECK(fio_request_input(chip, info.lines + 5, "fio-test", FIO_EDGE_NONE, FIO_BIAS_AS_IS, false, 0, &err) == NULL && err.code != 0,
          "line out of range: %d %s", err.code, err.op);
    fio_chip_close(chip);
}

int main(void) {
    printf("fio_test: %s\n", fio_backend());
    without_a_chip();
    const char *label = getenv("FIO_TEST_CHIP"), *sim = getenv("FIO_TEST_SIM");
    if (label && sim) with_a_simulated_chip(label, sim);
    else printf("fio_test: no FIO_TEST_CHIP/FIO_TEST_SIM: the simulated-chip tests are skipped (the VM test runs them)\n");
    printf("fio_test: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
