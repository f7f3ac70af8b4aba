// Unit tests of the sensor agent's config, buffer and payloads and of the sysfs readers; run
// natively and, cross-built, under qemu-user for aarch64, armhf and mipsel.
#define _GNU_SOURCE
#include "agent.h"
#include "fio_gpio.h"
#include "fio_sysfs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void test_config(void) {
    agent_config c;
    char err[300];
    const char *good =
        "# a LinkIt\n"
        "broker mqtt://192.168.1.10:1884\n"
        "client-id linkit-1\n"
        "buffer 50\n"
        "gpio-input door 10000600.gpio-bank0 2 pull-up active-low\n"
        "pulse-counter rain 10000600.gpio-bank0 3 falling 300   # a tipping bucket\n"
        "iio climate dht11 30\n"
        "w1 outdoor 28-000005e2fdc3\n";
    CHECK(agent_parse_config(good, &c, err, sizeof err) == 0, "good config refused: %s", err);
    CHECK(strcmp(c.host, "192.168.1.10") == 0 && c.port == 1884, "broker %s:%d", c.host, c.port);
    CHECK(strcmp(c.prefix, "flowchain/agent/linkit-1") == 0, "default prefix %s", c.prefix);
    CHECK(c.buffer == 50 && c.sensor_count == 4, "buffer %zu sensors %d", c.buffer, c.sensor_count);
    CHECK(c.sensors[0].type == SENSOR_GPIO_INPUT && c.sensors[0].bias == FIO_BIAS_PULL_UP && c.sensors[0].active_low && c.sensors[0].offset == 2, "gpio-input");
    CHECK(c.sensors[1].type == SENSOR_PULSE_COUNTER && c.sensors[1].edge == FIO_EDGE_FALLING && c.sensors[1].interval_s == 300, "pulse-counter");
    CHECK(c.sensors[2].type == SENSOR_IIO && strcmp(c.sensors[2].source, "dht11") == 0 && c.sensors[2].interval_s == 30, "iio");
    CHECK(c.sensors[3].type == SENSOR_W1 && c.sensors[3].interval_s == 60, "w1 default interval");

    struct { const char *text, *expect; } bad[] = {
        {"w1 t 28-1\n", "no 'broker"},
        {"broker http://x\nw1 t 28-1\n", "line 1: broker must be mqtt://"},
        {"broker mqtt://x:99999\nw1 t 28-1\n", "line 1: bad broker port"},
        {"broker mqtt://x\n", "no sensors"},
        {"broker mqtt://x\nw1 a/b 28-1\n", "line 2: a device id"},
        {"broker mqtt://x\nw1 t 28-1\nw1 t 28-2\n", "line 3: two sensors named 't'"},
        {"broker mqtt://x\ngpio-input d chip\n", "line 2: needs DEVICE CHIP OFFSET"},
        {"broker mqtt://x\ngpio-input d chip 2 sideways\n", "line 2: unknown option 'sideways'"},
        {"broker mqtt://x\nw1 t 28-1 0\n", "line 2: an interval"},
        {"broker mqtt://x\nfrobnicate 1\nw1 t 28-1\n", "line 2: unknown setting"},
        {"# blank lines count\n\nbroker mqtt://x\n\n\nw1 t 28-1\nbroker: mqtt://y\n", "line 7: unknown setting or wrong number of fields: 'broker:'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = agent_parse_config(bad[i].text, &c, err, sizeof err);
        CHECK(rc < 0 && strstr(err, bad[i].expect), "config %zu: rc %d, error '%s', expected '%s'", i, rc, err, bad[i].expect);
    }
}

static void test_buffer(void) {
    reading_buffer b;
    CHECK(buffer_init(&b, 3) == 0, "init");
    CHECK(buffer_push(&b, "t", "1") == 0 && buffer_push(&b, "t", "2") == 0 && buffer_push(&b, "t", "3") == 0, "push");
    buffer_at(&b, 0)->mid = 11;
    buffer_at(&b, 1)->mid = 12;
    CHECK(buffer_ack(&b, 12) && b.count == 2, "ack of the second");
    CHECK(strcmp(buffer_at(&b, 0)->payload, "1") == 0 && strcmp(buffer_at(&b, 1)->payload, "3") == 0, "order kept after an ack out of order");
    CHECK(!buffer_ack(&b, 99), "unknown mid");
    buffer_unsend(&b);
    CHECK(buffer_at(&b, 0)->mid == 0, "in-flight sent again after a disconnect");
    CHECK(buffer_push(&b, "t", "4") == 0 && buffer_push(&b, "t", "5") == 1, "full: the oldest is dropped");
    CHECK(b.dropped == 1 && b.dropped_unreported == 1 && b.count == 3, "dropped counted");
    CHECK(strcmp(buffer_at(&b, 0)->payload, "3") == 0, "oldest dropped first");
}

static void test_payload(void) {
    char out[200];
    CHECK(agent_payload(out, sizeof out, 7, 1764000000000, false, "\"temperature\":21.500") > 0, "payload");
    CHECK(strcmp(out, "{\"seq\":7,\"time\":1764000000000,\"timeSynced\":false,\"temperature\":21.500}") == 0, "payload %s", out);
    CHECK(agent_payload(out, 20, 7, 1764000000000, true, "\"x\":1") < 0, "too long is refused, not cut");
}

static void test_sysfs(void) {
    double c;
    CHECK(fio_w1_parse("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n", &c) == 0 && fabs(c - 23.125) < 1e-9, "w1 good");
    CHECK(fio_w1_parse("72 01 4b 46 7f ff 0e 11 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 11 57 t=23125\n", &c) < 0 && errno == EBADMSG, "w1 bad crc");
    char root[] = "/tmp/agent-sysfs-XXXXXX";
    CHECK(mkdtemp(root) != NULL, "mkdtemp");
    char path[400];
    snprintf(path, sizeof path, "%s/bus", root); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/bus/iio", root); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/bus/iio/devices", root); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/bus/iio/devices/iio:device0", root); mkdir(path, 0755);
    char file[500];
    snprintf(file, sizeof file, "%s/name", path); write_file(file, "dht11\n");
    snprintf(file, sizeof file, "%s/in_temp_input", path); write_file(file, "23125\n");
    snprintf(file, sizeof file, "%s/in_voltage0_raw", path); write_file(file, "1000\n");
    snprintf(file, sizeof file, "%s/in_voltage_scale", path); write_file(file, "0.5\n");
    snprintf(file, sizeof file, "%s/in_voltage0_offset", path); write_file(file, "10\n");
    char dir[600], channels[200];
    CHECK(fio_iio_find(root, "dht11", dir, sizeof dir) == 0, "iio by driver name");
    CHECK(fio_iio_find(root, "iio:device0", dir, sizeof dir) == 0, "iio by id");
    CHECK(fio_iio_find(root, "bmp280", dir, sizeof dir) < 0 && errno == ENOENT, "iio missing");
    CHECK(fio_iio_channels(dir, channels, sizeof channels) == 2, "two channels: %s", channels);
    double v;
    CHECK(fio_iio_read(dir, "in_temp", &v) == 0 && fabs(v - 23.125) < 1e-9, "milli °C to °C: %g", v);
    CHECK(fio_iio_read(dir, "in_voltage0", &v) == 0 && v == 505, "(raw + offset) x shared scale: %g", v);
    snprintf(file, sizeof file, "%s/in_temp_input", dir); write_file(file, "not a number\n");
    CHECK(fio_iio_read(dir, "in_temp", &v) < 0 && errno == EBADMSG, "garbage refused");
    CHECK(fio_w1_read(root, "28-missing", &c) < 0 && errno == ENOENT, "w1 missing");
    char cmd[500];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_config();
    test_buffer();
    test_payload();
    test_sysfs();
    if (failures) { fprintf(stderr, "agent_test: %d failure(s)\n", failures); return 1; }
    printf("agent_test: all passed\n");
    return 0;
}
