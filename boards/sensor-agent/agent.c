// flowchain-agent: reads GPIO lines (edges, pulse counts), IIO channels and 1-Wire thermometers
// and publishes each reading as JSON with a per-device sequence number to an MQTT broker, for
// boards that cannot run the Swift node (the LinkIt Smart 7688). A Flowchain node's MQTT bridge
// ingests the topics (boards/sensor-agent/README.md gives the rule).
//
//   flowchain-agent CONFIG-FILE
#define _GNU_SOURCE
#include "agent.h"
#include "fio_clock.h"
#include "fio_gpio.h"
#include "fio_sysfs.h"

#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static reading_buffer buffer;
static bool connected = false;

static void say(const char *level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "flowchain-agent: %s: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Per-device sequence numbers survive restarts: the state file holds, per device, the highest
// seq reserved; a start continues after it (a jump of at most STATE_BLOCK, which the node's
// bridge records as a gap, never a repeat).
#define STATE_BLOCK 100
typedef struct { char device[64]; uint64_t next, reserved; } seq_state;
static seq_state seqs[AGENT_MAX_SENSORS + 1];
static int seq_count = 0;
static const char *state_path;

static void load_state(void) {
    FILE *f = fopen(state_path, "r");
    if (!f) return;
    char device[64];
    uint64_t reserved;
    while (seq_count < AGENT_MAX_SENSORS + 1 && fscanf(f, "%63s %" SCNu64, device, &reserved) == 2) {
        snprintf(seqs[seq_count].device, sizeof seqs[seq_count].device, "%s", device);
        seqs[seq_count].next = reserved + 1;
        seqs[seq_count].reserved = reserved;
        seq_count++;
    }
    fclose(f);
}

static int save_state(void) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", state_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    for (int i = 0; i < seq_count; i++) fprintf(f, "%s %" PRIu64 "\n", seqs[i].device, seqs[i].reserved);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) { fclose(f); return -1; }
    fclose(f);
    return rename(tmp, state_path);
}

static uint64_t next_seq(const char *device) {
    seq_state *s = NULL;
    for (int i = 0; i < seq_count; i++) if (strcmp(seqs[i].device, device) == 0) s = &seqs[i];
    if (!s && seq_count < AGENT_MAX_SENSORS + 1) {
        s = &seqs[seq_count++];
        snprintf(s->device, sizeof s->device, "%s", device);
        s->next = 1;
        s->reserved = 0;
    }
    if (!s) return 0;
    if (s->next > s->reserved) {
        s->reserved = s->next + STATE_BLOCK - 1;
        if (save_state() != 0) say("warning", "cannot save %s (%s): after a restart seqs may repeat", state_path, strerror(errno));
    }
    return s->next++;
}

static const agent_config *config;

static void emit(const char *device, const char *fields) {
    char topic[256], payload[AGENT_PAYLOAD_MAX];
    snprintf(topic, sizeof topic, "%s/%s", config->prefix, device);
    fio_clock_state clock = fio_clock_read();
    if (agent_payload(payload, sizeof payload, next_seq(device), wall_ms(), clock.synchronised, fields) < 0) {
        say("error", "reading of %s too long; not sent", device);
        return;
    }
    pthread_mutex_lock(&lock);
    int dropped = buffer_push(&buffer, topic, payload);
    uint64_t total = buffer.dropped;
    pthread_mutex_unlock(&lock);
    if (dropped && (total == 1 || total % 100 == 0)) {
        say("warning", "buffer full (%zu readings, broker away): dropped the oldest reading (%" PRIu64 " dropped so far)", config->buffer, total);
    }
}

static void on_connect(struct mosquitto *m, void *data, int rc) {
    (void)m; (void)data;
    if (rc == 0) {
        pthread_mutex_lock(&lock);
        connected = true;
        size_t waiting = buffer.count;
        pthread_mutex_unlock(&lock);
        say("info", "connected to %s:%d (%zu reading(s) waiting)", config->host, config->port, waiting);
    } else {
        say("warning", "broker refused the connection: %s", mosquitto_connack_string(rc));
    }
}

static void on_disconnect(struct mosquitto *m, void *data, int rc) {
    (void)m; (void)data;
    pthread_mutex_lock(&lock);
    connected = false;
    buffer_unsend(&buffer);
    pthread_mutex_unlock(&lock);
    if (!stopping) say("warning", "disconnected from %s:%d (%s); reconnecting", config->host, config->port, rc ? mosquitto_strerror(rc) : "asked to");
}

static void on_publish(struct mosquitto *m, void *data, int mid) {
    (void)m; (void)data;
    pthread_mutex_lock(&lock);
    buffer_ack(&buffer, mid);
    pthread_mutex_unlock(&lock);
}

/// Publishes what waits (at most 100 in flight); reports drops once connected.
static void flush(struct mosquitto *m) {
    pthread_mutex_lock(&lock);
    uint64_t unreported = connected ? buffer.dropped_unreported : 0;
    if (unreported) buffer.dropped_unreported = 0;
    pthread_mutex_unlock(&lock);
    if (unreported) {
        char fields[160];
        snprintf(fields, sizeof fields, "\"event\":\"dropped\",\"count\":%" PRIu64 ",\"buffer\":%zu", unreported, config->buffer);
        emit("agent", fields);
    }
    pthread_mutex_lock(&lock);
    int in_flight = 0;
    for (size_t i = 0; connected && i < buffer.count && in_flight < 100; i++) {
        pending *p = buffer_at(&buffer, i);
        if (p->mid) { in_flight++; continue; }
        int mid = 0;
        int rc = mosquitto_publish(m, &mid, p->topic, (int)strlen(p->payload), p->payload, config->qos, false);
        if (rc != MOSQ_ERR_SUCCESS) break;
        p->mid = mid;
        in_flight++;
    }
    pthread_mutex_unlock(&lock);
}

static void open_gpio(sensor *s, double now) {
    fio_error err = {0};
    fio_chip *chip = fio_chip_open(s->chip, &err);
    if (chip) {
        int edge = s->type == SENSOR_GPIO_INPUT ? FIO_EDGE_BOTH : s->edge;
        char consumer[80];
        snprintf(consumer, sizeof consumer, "flowchain-agent:%s", s->device);
        s->request = fio_request_input(chip, s->offset, consumer, (fio_edge)edge, (fio_bias)s->bias, s->active_low, 10000, &err);
        fio_chip_close(chip);
    }
    if (s->request) {
        if (s->failing) say("info", "%s: line %u of %s is readable again", s->device, s->offset, s->chip);
        s->failing = 0;
        s->next_due = now + s->interval_s;
    } else {
        if (s->failing != err.code) say("warning", "%s: %s: %s (retrying every 10 s)", s->device, err.op, strerror(err.code));
        s->failing = err.code;
        s->next_due = now + 10;
    }
}

static void poll_gpio(sensor *s) {
    fio_error err = {0};
    while (s->request && fio_request_wait_event(s->request, 0, &err) == 1) {
        fio_event e;
        if (fio_request_read_event(s->request, &e, &err) < 0) break;
        if (s->type == SENSOR_PULSE_COUNTER) { s->count++; continue; }
        char fields[200];
        snprintf(fields, sizeof fields, "\"value\":%d,\"edge\":\"%s\",\"chip\":\"%s\",\"line\":%u,\"kernelTimeNs\":%" PRIu64,
                 e.rising ^ s->active_low ? 1 : 0, e.rising ? "rising" : "falling", s->chip, s->offset, e.timestamp_ns);
        emit(s->device, fields);
    }
}

static void sample(sensor *s, double now) {
    char fields[AGENT_PAYLOAD_MAX - 100];
    fields[0] = 0;
    int failed = 0;
    if (s->type == SENSOR_PULSE_COUNTER) {
        snprintf(fields, sizeof fields, "\"count\":%" PRIu64 ",\"intervalS\":%g,\"chip\":\"%s\",\"line\":%u", s->count, s->interval_s, s->chip, s->offset);
        s->count = 0;
    } else if (s->type == SENSOR_W1) {
        double c;
        if (fio_w1_read(config->sysfs, s->source, &c) == 0) snprintf(fields, sizeof fields, "\"temperature\":%.3f", c);
        else failed = errno;
    } else if (s->type == SENSOR_IIO) {
        char dir[600], channels[1024];
        if (fio_iio_find(config->sysfs, s->source, dir, sizeof dir) < 0 || fio_iio_channels(dir, channels, sizeof channels) <= 0) {
            failed = errno ? errno : ENOENT;
        } else {
            char *save = NULL;
            for (char *ch = strtok_r(channels, ",", &save); ch; ch = strtok_r(NULL, ",", &save)) {
                double v;
                if (fio_iio_read(dir, ch, &v) < 0) { failed = errno; break; }
                size_t used = strlen(fields);
                snprintf(fields + used, sizeof fields - used, "%s\"%s\":%.6g", used ? "," : "", ch + 3, v);
            }
        }
    }
    s->next_due = now + s->interval_s;
    if (failed) {
        if (s->failing != failed) say("warning", "%s: cannot read %s: %s", s->device, s->source, strerror(failed));
        s->failing = failed;
        return;
    }
    if (s->failing) say("info", "%s: readable again", s->device);
    s->failing = 0;
    emit(s->device, fields);
}

int main(int argc, char **argv) {
    bool check = argc == 3 && strcmp(argv[1], "--check") == 0;
    if (!(argc == 2 || check) || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: flowchain-agent [--check] CONFIG-FILE\n"
                        "Reads GPIO lines, IIO channels and 1-Wire thermometers and publishes each reading as JSON\n"
                        "({\"seq\",\"time\",\"timeSynced\",…}) to <prefix>/<device> on an MQTT broker. See README.md.\n"
                        "  --check   read the config, say what it configures, and exit (0 when it is valid)\n");
        return argc == 2 && argv[1][0] == '-' ? 0 : 2;
    }
    const char *path = argv[argc - 1];
    FILE *f = fopen(path, "r");
    if (!f) { say("error", "cannot open %s: %s", path, strerror(errno)); return 2; }
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    static agent_config c;
    char error[300];
    if (agent_parse_config(text, &c, error, sizeof error) < 0) { say("error", "%s: %s", path, error); return 2; }
    if (check) {
        printf("%s: valid: broker %s:%d, prefix %s, %d sensor(s):", path, c.host, c.port, c.prefix, c.sensor_count);
        for (int i = 0; i < c.sensor_count; i++) printf(" %s", c.sensors[i].device);
        printf("\n");
        return 0;
    }
    config = &c;
    state_path = c.state_path;
    load_state();
    if (buffer_init(&buffer, c.buffer) < 0) { say("error", "cannot allocate a buffer of %zu readings", c.buffer); return 1; }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(c.client_id, true, NULL);
    if (!m) { say("error", "cannot create the MQTT client: %s", strerror(errno)); return 1; }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_reconnect_delay_set(m, 1, 30, true);
    int rc = mosquitto_connect_async(m, c.host, c.port, 30);
    if (rc != MOSQ_ERR_SUCCESS) say("warning", "connecting to %s:%d: %s; retrying", c.host, c.port, mosquitto_strerror(rc));
    if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) { say("error", "cannot start the MQTT thread"); return 1; }

    fio_clock_state clock = fio_clock_read();
    say("info", "%d sensor(s), publishing to %s:%d under %s/, buffer %zu, gpio %s%s", c.sensor_count, c.host, c.port, c.prefix, c.buffer,
        fio_backend(), clock.synchronised ? "" : "; the system clock is not synchronised: readings say timeSynced false until it is");
    double now = monotonic_s();
    for (int i = 0; i < c.sensor_count; i++) {
        sensor *s = &c.sensors[i];
        if (s->type == SENSOR_GPIO_INPUT || s->type == SENSOR_PULSE_COUNTER) open_gpio(s, now);
        else s->next_due = now;
    }
    bool was_connected_retry = false;
    while (!stopping) {
        now = monotonic_s();
        for (int i = 0; i < c.sensor_count; i++) {
            sensor *s = &c.sensors[i];
            bool gpio = s->type == SENSOR_GPIO_INPUT || s->type == SENSOR_PULSE_COUNTER;
            if (gpio && !s->request) { if (now >= s->next_due) open_gpio(s, now); continue; }
            if (gpio) poll_gpio(s);
            if (s->type != SENSOR_GPIO_INPUT && now >= s->next_due) sample(s, now);
        }
        // connect_async fails at once when the broker's address does not resolve: keep trying.
        if (rc != MOSQ_ERR_SUCCESS && !was_connected_retry) { was_connected_retry = true; mosquitto_reconnect_async(m); }
        flush(m);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    // Stopping: give what is in flight or waiting up to 2 s to reach the broker.
    double until = monotonic_s() + 2;
    for (;;) {
        flush(m);
        pthread_mutex_lock(&lock);
        size_t left = buffer.count;
        bool up = connected;
        pthread_mutex_unlock(&lock);
        if (left == 0 || !up || monotonic_s() > until) {
            if (left) say("warning", "stopping with %zu reading(s) not delivered", left);
            break;
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    for (int i = 0; i < c.sensor_count; i++) if (c.sensors[i].request) fio_request_release(c.sensors[i].request);
    say("info", "stopped");
    return 0;
}
