// The agent's config file: one setting or sensor per line, `#` starts a comment.
//
//   broker mqtt://HOST[:PORT]
//   client-id ID                      (default flowchain-agent)
//   prefix TOPIC-PREFIX               (default flowchain/agent/<client-id>; readings go to <prefix>/<device>)
//   buffer N                          (readings held while the broker is away; default 1000)
//   state FILE                        (per-device seq reservations; default ./flowchain-agent.state)
//   sysfs DIR                         (default /sys)
//   gpio-input DEVICE CHIP OFFSET [as-is|disabled|pull-up|pull-down] [active-low]
//   pulse-counter DEVICE CHIP OFFSET [rising|falling|both] [INTERVAL-S]
//   iio DEVICE IIO-DEVICE [INTERVAL-S]
//   w1 DEVICE W1-ID [INTERVAL-S]
#define _GNU_SOURCE
#include "agent.h"
#include "fio_gpio.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *error, size_t size, int line, const char *what, const char *value) {
    snprintf(error, size, "line %d: %s%s%s%s", line, what, value ? " '" : "", value ? value : "", value ? "'" : "");
    return -1;
}

static bool valid_device(const char *d) {
    if (!*d || strlen(d) > 63) return false;
    for (const char *c = d; *c; c++) {
        if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.' || *c == ':')) return false;
    }
    return true;
}

static int parse_interval(const char *text, double *out) {
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || *end || v < 0.01 || v > 86400) return -1;
    *out = v;
    return 0;
}

int agent_parse_config(const char *text, agent_config *c, char *error, size_t esize) {
    memset(c, 0, sizeof *c);
    if (esize) error[0] = 0;
    snprintf(c->client_id, sizeof c->client_id, "flowchain-agent");
    snprintf(c->sysfs, sizeof c->sysfs, "/sys");
    snprintf(c->state_path, sizeof c->state_path, "flowchain-agent.state");
    c->port = 1883;
    c->buffer = 1000;
    c->qos = 1;
    bool have_broker = false;
    char *copy = strdup(text);
    if (!copy) return fail(error, esize, 0, "out of memory", NULL);
    int line_no = 0;
    // Lines split by hand: strtok_r would merge blank lines and the errors would name wrong lines.
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *w[8] = {0};
        int n = 0;
        char *wsave = NULL;
        for (char *t = strtok_r(line, " \t\r", &wsave); t && n < 8; t = strtok_r(NULL, " \t\r", &wsave)) w[n++] = t;
        if (n == 0) continue;
        int rc = 0;
        if (strcmp(w[0], "broker") == 0 && n == 2) {
            const char *u = w[1];
            if (strncmp(u, "mqtt://", 7) != 0) { rc = fail(error, esize, line_no, "broker must be mqtt://HOST[:PORT]:", u); break; }
            u += 7;
            const char *colon = strrchr(u, ':');
            if (colon) {
                char *end = NULL;
                long port = strtol(colon + 1, &end, 10);
                if (*end || port < 1 || port > 65535) { rc = fail(error, esize, line_no, "bad broker port in", w[1]); break; }
                c->port = (int)port;
                snprintf(c->host, sizeof c->host, "%.*s", (int)(colon - u), u);
            } else {
                snprintf(c->host, sizeof c->host, "%s", u);
            }
            if (!c->host[0]) { rc = fail(error, esize, line_no, "no host in", w[1]); break; }
            have_broker = true;
        } else if (strcmp(w[0], "client-id") == 0 && n == 2) {
            snprintf(c->client_id, sizeof c->client_id, "%s", w[1]);
        } else if (strcmp(w[0], "prefix") == 0 && n == 2) {
            snprintf(c->prefix, sizeof c->prefix, "%s", w[1]);
        } else if (strcmp(w[0], "sysfs") == 0 && n == 2) {
            snprintf(c->sysfs, sizeof c->sysfs, "%s", w[1]);
        } else if (strcmp(w[0], "state") == 0 && n == 2) {
            snprintf(c->state_path, sizeof c->state_path, "%s", w[1]);
        } else if (strcmp(w[0], "buffer") == 0 && n == 2) {
            char *end = NULL;
            long b = strtol(w[1], &end, 10);
            if (*end || b < 1 || b > 1000000) { rc = fail(error, esize, line_no, "buffer must be 1…1000000, not", w[1]); break; }
            c->buffer = (size_t)b;
        } else if (strcmp(w[0], "gpio-input") == 0 || strcmp(w[0], "pulse-counter") == 0 || strcmp(w[0], "iio") == 0 || strcmp(w[0], "w1") == 0) {
            if (c->sensor_count == AGENT_MAX_SENSORS) { rc = fail(error, esize, line_no, "too many sensors (at most 32)", NULL); break; }
            sensor *s = &c->sensors[c->sensor_count];
            memset(s, 0, sizeof *s);
            if (n < 3) { rc = fail(error, esize, line_no, "too few fields for", w[0]); break; }
            if (!valid_device(w[1])) { rc = fail(error, esize, line_no, "a device id is 1–63 letters, digits, - _ . :, not", w[1]); break; }
            snprintf(s->device, sizeof s->device, "%s", w[1]);
            for (int i = 0; i < c->sensor_count; i++) {
                if (strcmp(c->sensors[i].device, s->device) == 0) { rc = fail(error, esize, line_no, "two sensors named", s->device); break; }
            }
            if (rc) break;
            s->interval_s = 60;
            if (w[0][0] == 'g' || w[0][0] == 'p') {
                s->type = w[0][0] == 'g' ? SENSOR_GPIO_INPUT : SENSOR_PULSE_COUNTER;
                if (n < 4) { rc = fail(error, esize, line_no, "needs DEVICE CHIP OFFSET:", w[0]); break; }
                snprintf(s->chip, sizeof s->chip, "%s", w[2]);
                char *end = NULL;
                long off = strtol(w[3], &end, 10);
                if (*end || off < 0 || off > 1023) { rc = fail(error, esize, line_no, "a line offset is 0…1023, not", w[3]); break; }
                s->offset = (unsigned)off;
                s->edge = FIO_EDGE_RISING;
                for (int i = 4; i < n; i++) {
                    if (strcmp(w[i], "as-is") == 0) s->bias = FIO_BIAS_AS_IS;
                    else if (strcmp(w[i], "disabled") == 0) s->bias = FIO_BIAS_DISABLED;
                    else if (strcmp(w[i], "pull-up") == 0) s->bias = FIO_BIAS_PULL_UP;
                    else if (strcmp(w[i], "pull-down") == 0) s->bias = FIO_BIAS_PULL_DOWN;
                    else if (strcmp(w[i], "active-low") == 0 && s->type == SENSOR_GPIO_INPUT) s->active_low = true;
                    else if (strcmp(w[i], "rising") == 0 && s->type == SENSOR_PULSE_COUNTER) s->edge = FIO_EDGE_RISING;
                    else if (strcmp(w[i], "falling") == 0 && s->type == SENSOR_PULSE_COUNTER) s->edge = FIO_EDGE_FALLING;
                    else if (strcmp(w[i], "both") == 0 && s->type == SENSOR_PULSE_COUNTER) s->edge = FIO_EDGE_BOTH;
                    else if (s->type == SENSOR_PULSE_COUNTER && parse_interval(w[i], &s->interval_s) == 0) {}
                    else { rc = fail(error, esize, line_no, "unknown option", w[i]); break; }
                }
                if (rc) break;
            } else {
                s->type = w[0][0] == 'i' ? SENSOR_IIO : SENSOR_W1;
                snprintf(s->source, sizeof s->source, "%s", w[2]);
                if (n > 4) { rc = fail(error, esize, line_no, "too many fields for", w[0]); break; }
                if (n == 4 && parse_interval(w[3], &s->interval_s) < 0) { rc = fail(error, esize, line_no, "an interval is 0.01…86400 seconds, not", w[3]); break; }
            }
            c->sensor_count++;
        } else {
            rc = fail(error, esize, line_no, "unknown setting or wrong number of fields:", w[0]);
            break;
        }
        if (rc) break;
    }
    free(copy);
    if (error[0]) return -1;
    if (!have_broker) return fail(error, esize, line_no, "no 'broker mqtt://HOST[:PORT]' line", NULL);
    if (c->sensor_count == 0) return fail(error, esize, line_no, "no sensors configured", NULL);
    if (!c->prefix[0]) snprintf(c->prefix, sizeof c->prefix, "flowchain/agent/%s", c->client_id);
    return 0;
}
